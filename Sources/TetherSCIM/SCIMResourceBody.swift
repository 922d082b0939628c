/// The attributes of a resource as clients own them, in the form Tether stores: `schemas`,
/// `externalId`, core attributes, and one object per extension URN. `id`, `meta` and the
/// read-only `groups` are not part of it; they are added when the resource is rendered.
enum SCIMResourceBody {
    /// Reads a POST or PUT body (RFC 7644 §3.3, §3.5.1).
    ///
    /// `schemas` must name the resource type's core schema. Read-only attributes (`id`,
    /// `meta`, `groups`) are ignored, as RFC 7644 §3.3 says; so are attributes no served
    /// schema defines (e.g. `password`, which Tether never stores), so that clients with
    /// extra mappings keep working.
    static func read(_ body: SCIMJSON, type: SCIMResourceType) throws(SCIMError) -> SCIMJSON.Object {
        guard case .object(let object) = body else {
            throw SCIMError.invalidSyntax("the request body must be a JSON object, not \(body.kindDescription)")
        }
        guard let schemas = object["schemas"] else {
            throw SCIMError.invalidValue("schemas is required and must include \(type.schema.id)")
        }
        guard case .array(let names) = schemas, names.allSatisfy({ $0.stringValue != nil }) else {
            throw SCIMError.invalidValue("schemas must be an array of schema URNs")
        }
        guard names.contains(where: { $0.stringValue!.caseInsensitiveEquals(type.schema.id) }) else {
            throw SCIMError.invalidValue("schemas must include \(type.schema.id) for a \(type.name)")
        }
        var result = SCIMJSON.Object()
        for member in object {
            let name = member.name
            if ["schemas", "id", "meta"].contains(where: { $0.caseInsensitiveEquals(name) }) { continue }
            if let ext = type.extensions.first(where: { $0.schema.id.caseInsensitiveEquals(name) }) {
                if member.value == .null { continue }
                guard case .object(let values) = member.value else {
                    throw SCIMError.invalidValue("\(ext.schema.id) must be an object, not \(member.value.kindDescription)")
                }
                var extObject = result[ext.schema.id]?.objectValue ?? SCIMJSON.Object()
                for value in values {
                    guard let attribute = ext.schema.attribute(value.name), attribute.mutability != .readOnly else { continue }
                    extObject[attribute.name] = try SCIMValues.normalize(
                        value.value, as: attribute, path: "\(ext.schema.id):\(attribute.name)")
                }
                result[ext.schema.id] = .object(extObject)
                continue
            }
            guard let path = SCIMAttributePath.parse(name, knownSchemas: type.schemaURNs), path.subAttribute == nil,
                let resolved = type.resolve(path), let attribute = resolved.attribute,
                attribute.mutability != .readOnly
            else { continue }
            let normalized = try SCIMValues.normalize(member.value, as: attribute, path: resolved.description)
            if let urn = resolved.extensionURN {
                var extObject = result[urn]?.objectValue ?? SCIMJSON.Object()
                extObject[attribute.name] = normalized
                result[urn] = .object(extObject)
            } else {
                result[attribute.name] = normalized
            }
        }
        return canonical(result, type: type)
    }

    /// Orders members as the schemas list them, drops unassigned values and empty
    /// extensions, and sets `schemas` to the core URN plus the extensions present.
    static func canonical(_ object: SCIMJSON.Object, type: SCIMResourceType) -> SCIMJSON.Object {
        var result = SCIMJSON.Object()
        var schemas: [SCIMJSON] = [.string(type.schema.id)]
        var extensions: [SCIMJSON.Object.Member] = []
        if let externalId = object["externalId"], CompiledSCIMFilter.isPresent(externalId) {
            result["externalId"] = externalId
        }
        var core: [SCIMJSON.Object.Member] = []
        for attribute in type.schema.attributes {
            if let value = cleaned(object[attribute.name]) { core.append(.init(attribute.name, value)) }
        }
        for ext in type.extensions {
            guard let values = object[ext.schema.id]?.objectValue else { continue }
            var extObject = SCIMJSON.Object()
            for attribute in ext.schema.attributes {
                if let value = cleaned(values[attribute.name]) { extObject[attribute.name] = value }
            }
            if !extObject.isEmpty {
                schemas.append(.string(ext.schema.id))
                extensions.append(.init(ext.schema.id, .object(extObject)))
            }
        }
        var ordered = [SCIMJSON.Object.Member("schemas", .array(schemas))]
        ordered += result.members + core + extensions
        return SCIMJSON.Object(ordered)
    }

    /// Drops nulls, empty arrays and empty objects, recursively: they mean unassigned.
    static func cleaned(_ value: SCIMJSON?) -> SCIMJSON? {
        guard let value else { return nil }
        switch value {
        case .null: return nil
        case .array(let items):
            let kept = items.compactMap { cleaned($0) }
            return kept.isEmpty ? nil : .array(kept)
        case .object(let object):
            let kept = object.members.compactMap { member in cleaned(member.value).map { SCIMJSON.Object.Member(member.name, $0) } }
            return kept.isEmpty ? nil : .object(SCIMJSON.Object(kept))
        default: return value
        }
    }
}
