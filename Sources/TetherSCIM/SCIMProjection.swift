import Foundation

/// What `attributes` or `excludedAttributes` (RFC 7644 §3.4.2.5, §3.9) keep of a resource.
///
/// `schemas` and attributes returned `always` (`id`) are always kept. Names are resolved
/// against the resource type; names it does not define are ignored.
struct SCIMProjection: Sendable {
    /// Per container (nil: the resource; a URN: that extension), attribute name (lowercased)
    /// → nil for the whole attribute, or the sub-attribute names (lowercased).
    typealias Selection = [String?: [String: Set<String>?]]

    enum Mode: Sendable {
        case all
        case only(Selection, wholeExtensions: Set<String>)
        case except(Selection, wholeExtensions: Set<String>)
    }

    var mode: Mode

    static let all = SCIMProjection(mode: .all)

    /// Reads the comma-separated parameters; both at once is `400 invalidSyntax`.
    static func parse(attributes: String?, excludedAttributes: String?, type: SCIMResourceType) throws(SCIMError) -> SCIMProjection {
        try parse(
            attributes: attributes.map(split), excludedAttributes: excludedAttributes.map(split), types: [type])
    }

    static func parse(attributes: [String]?, excludedAttributes: [String]?, types: [SCIMResourceType]) throws(SCIMError) -> SCIMProjection {
        let included = attributes.map { $0.filter { !$0.isEmpty } } ?? []
        let excluded = excludedAttributes.map { $0.filter { !$0.isEmpty } } ?? []
        if !included.isEmpty && !excluded.isEmpty {
            throw SCIMError.invalidSyntax("attributes and excludedAttributes are mutually exclusive")
        }
        if !included.isEmpty {
            let (selection, whole) = select(included, types: types)
            return SCIMProjection(mode: .only(selection, wholeExtensions: whole))
        }
        if !excluded.isEmpty {
            let (selection, whole) = select(excluded, types: types)
            return SCIMProjection(mode: .except(selection, wholeExtensions: whole))
        }
        return .all
    }

    private static func split(_ text: String) -> [String] {
        text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    }

    private static func select(_ names: [String], types: [SCIMResourceType]) -> (Selection, Set<String>) {
        var selection: Selection = [:]
        var whole = Set<String>()
        for name in names {
            for type in types {
                guard let path = SCIMAttributePath.parse(name, knownSchemas: type.schemaURNs), let resolved = type.resolve(path)
                else { continue }
                guard let attribute = resolved.attribute else {
                    if let urn = resolved.extensionURN { whole.insert(urn.lowercased()) }
                    continue
                }
                let container = resolved.extensionURN?.lowercased()
                let key = attribute.name.lowercased()
                var attributes = selection[container] ?? [:]
                if let sub = resolved.subAttribute {
                    if let existing = attributes[key] {
                        if var subs = existing {
                            subs.insert(sub.name.lowercased())
                            attributes[key] = subs
                        }
                    } else {
                        attributes[key] = Set([sub.name.lowercased()])
                    }
                } else {
                    attributes[key] = .some(nil)
                }
                selection[container] = attributes
            }
        }
        return (selection, whole)
    }

    /// The part of `resource` (its full representation) this projection returns.
    func apply(_ resource: SCIMJSON.Object, type: SCIMResourceType) -> SCIMJSON.Object {
        switch mode {
        case .all:
            return resource
        case .only(let selection, let whole):
            var result = SCIMJSON.Object()
            for member in resource {
                let lower = member.name.lowercased()
                if lower == "schemas" || lower == "id" {
                    result[member.name] = member.value
                } else if type.extensions.contains(where: { $0.schema.id.lowercased() == lower }) {
                    if whole.contains(lower) {
                        result[member.name] = member.value
                    } else if let wanted = selection[lower], let object = member.value.objectValue {
                        let kept = keep(object, wanted)
                        if !kept.isEmpty { result[member.name] = .object(kept) }
                    }
                } else if let entry = selection[nil]?[lower] {
                    if let value = Self.narrow(member.value, to: entry) { result[member.name] = value }
                }
            }
            return result
        case .except(let selection, let whole):
            var result = SCIMJSON.Object()
            for member in resource {
                let lower = member.name.lowercased()
                if lower == "schemas" || lower == "id" {
                    result[member.name] = member.value
                } else if type.extensions.contains(where: { $0.schema.id.lowercased() == lower }) {
                    if whole.contains(lower) { continue }
                    if let unwanted = selection[lower], let object = member.value.objectValue {
                        let kept = drop(object, unwanted)
                        if !kept.isEmpty { result[member.name] = .object(kept) }
                    } else {
                        result[member.name] = member.value
                    }
                } else if let entry = selection[nil]?[lower] {
                    if let subs = entry, let value = Self.without(member.value, subs) { result[member.name] = value }
                } else {
                    result[member.name] = member.value
                }
            }
            return result
        }
    }

    private func keep(_ object: SCIMJSON.Object, _ wanted: [String: Set<String>?]) -> SCIMJSON.Object {
        var kept = SCIMJSON.Object()
        for member in object {
            if let entry = wanted[member.name.lowercased()], let value = Self.narrow(member.value, to: entry) {
                kept[member.name] = value
            }
        }
        return kept
    }

    private func drop(_ object: SCIMJSON.Object, _ unwanted: [String: Set<String>?]) -> SCIMJSON.Object {
        var kept = SCIMJSON.Object()
        for member in object {
            if let entry = unwanted[member.name.lowercased()] {
                if let subs = entry, let value = Self.without(member.value, subs) { kept[member.name] = value }
            } else {
                kept[member.name] = member.value
            }
        }
        return kept
    }

    /// The value with only the sub-attributes `subs` (all of it when nil).
    static func narrow(_ value: SCIMJSON, to subs: Set<String>?) -> SCIMJSON? {
        guard let subs else { return value }
        func pick(_ item: SCIMJSON) -> SCIMJSON? {
            guard let object = item.objectValue else { return nil }
            let members = object.members.filter { subs.contains($0.name.lowercased()) }
            return members.isEmpty ? nil : .object(SCIMJSON.Object(members))
        }
        if let items = value.arrayValue {
            let picked = items.compactMap(pick)
            return picked.isEmpty ? nil : .array(picked)
        }
        return pick(value)
    }

    /// The value without the sub-attributes `subs`.
    static func without(_ value: SCIMJSON, _ subs: Set<String>) -> SCIMJSON? {
        func strip(_ item: SCIMJSON) -> SCIMJSON? {
            guard let object = item.objectValue else { return item }
            let members = object.members.filter { !subs.contains($0.name.lowercased()) }
            return members.isEmpty ? nil : .object(SCIMJSON.Object(members))
        }
        if let items = value.arrayValue {
            let kept = items.compactMap(strip)
            return kept.isEmpty ? nil : .array(kept)
        }
        return strip(value)
    }
}
