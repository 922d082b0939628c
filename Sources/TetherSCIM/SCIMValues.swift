import Foundation

/// Brings client values into the shape the schema defines: names spelled as the schema
/// spells them, unknown and read-only sub-attributes dropped, `"True"`/`"False"` strings
/// (Entra) read as booleans, types checked. A wrong type is `400 invalidValue` naming the path.
enum SCIMValues {
    /// Normalises `value` for `attribute`; nil means unassigned (null, `[]`, `{}`).
    ///
    /// - Parameter element: the value is one element of a multi-valued attribute.
    static func normalize(_ value: SCIMJSON, as attribute: SCIMAttribute, path: String, element: Bool = false) throws(SCIMError) -> SCIMJSON? {
        if value == .null { return nil }
        if attribute.multiValued && !element {
            let items: [SCIMJSON]
            if case .array(let array) = value {
                items = array
            } else {
                throw SCIMError.invalidValue("\(path) is multi-valued: give an array, not \(value.kindDescription)")
            }
            var normalized: [SCIMJSON] = []
            var seen = Set<SCIMJSON>()
            for (index, item) in items.enumerated() {
                guard let one = try normalize(item, as: attribute, path: "\(path)[\(index)]", element: true) else { continue }
                if seen.insert(one).inserted { normalized.append(one) }
            }
            return normalized.isEmpty ? nil : .array(normalized)
        }
        switch attribute.type {
        case .complex:
            // Entra sends the enterprise manager as its id alone: `"manager": "26118915"`.
            if case .string = value, !attribute.multiValued || element, let sub = attribute.subAttribute("value") {
                return .object(SCIMJSON.Object([.init(sub.name, value)]))
            }
            guard case .object(let object) = value else {
                throw SCIMError.invalidValue("\(path) is complex: give an object, not \(value.kindDescription)")
            }
            var result = SCIMJSON.Object()
            for member in object {
                guard let sub = attribute.subAttribute(member.name) else { continue }
                if sub.mutability == .readOnly { continue }
                if let normalized = try normalize(member.value, as: sub, path: "\(path).\(sub.name)") {
                    result[sub.name] = normalized
                }
            }
            return result.isEmpty ? nil : .object(result)
        case .boolean:
            switch value {
            case .bool: return value
            case .string(let text) where text.lowercased() == "true": return .bool(true)
            case .string(let text) where text.lowercased() == "false": return .bool(false)
            default: throw SCIMError.invalidValue("\(path) is a boolean: give true or false, not \(value.kindDescription)")
            }
        case .integer:
            guard case .integer = value else {
                throw SCIMError.invalidValue("\(path) is an integer, not \(value.kindDescription)")
            }
            return value
        case .decimal:
            guard let number = value.numberValue else {
                throw SCIMError.invalidValue("\(path) is a decimal number, not \(value.kindDescription)")
            }
            return .decimal(number)
        case .dateTime:
            guard let text = value.stringValue, CompiledSCIMFilter.parseDate(text) != nil else {
                throw SCIMError.invalidValue("\(path) is an RFC 3339 date-time such as \"2026-11-28T10:00:00Z\"")
            }
            return value
        case .binary:
            guard let text = value.stringValue, Data(base64Encoded: text) != nil else {
                throw SCIMError.invalidValue("\(path) is binary: give it base64-encoded")
            }
            return value
        case .string, .reference:
            guard case .string = value else {
                throw SCIMError.invalidValue("\(path) is a string, not \(value.kindDescription)")
            }
            return value
        }
    }

    /// Checks what a whole resource must satisfy: required attributes and sub-attributes, and
    /// at most one `primary: true` per multi-valued attribute (RFC 7643 §2.4).
    static func validate(_ resource: SCIMJSON.Object, type: SCIMResourceType) throws(SCIMError) {
        for schema in type.schemas {
            let container: SCIMJSON.Object?
            if schema.id == type.schema.id {
                container = resource
            } else {
                container = resource[schema.id]?.objectValue
                if container == nil { continue }
            }
            for attribute in schema.attributes {
                let value = container?[attribute.name]
                if attribute.required && attribute.mutability != .readOnly {
                    guard let value, CompiledSCIMFilter.isPresent(value) else {
                        throw SCIMError.invalidValue("\(attribute.name) is required")
                    }
                }
                guard let value else { continue }
                let items = attribute.multiValued ? (value.arrayValue ?? []) : [value]
                if attribute.type == .complex {
                    for item in items {
                        for sub in attribute.subAttributes where sub.required {
                            guard let subValue = item[sub.name], CompiledSCIMFilter.isPresent(subValue) else {
                                throw SCIMError.invalidValue("\(attribute.name).\(sub.name) is required")
                            }
                        }
                    }
                }
                if attribute.multiValued, attribute.subAttribute("primary") != nil {
                    let primaries = items.filter { $0["primary"] == .bool(true) }.count
                    guard primaries <= 1 else {
                        throw SCIMError.invalidValue("at most one value of \(attribute.name) may be primary")
                    }
                }
            }
        }
    }
}
