import TetherCore

/// The stored text of an identity, written without `JSONEncoder`: a cold start writes one
/// for every person in the directory.
///
/// It is the JSON the store's `JSONEncoder` writes (keys sorted, nil left out), so the
/// store's decoder reads it back into the same value. ``fields`` and ``factFields`` name
/// every property written: a test holds them to the properties the types have.
enum IdentityJSON {
    static let fields = [
        "attributes", "department", "displayName", "email", "employeeNumber", "groups", "id", "isTombstone",
        "lastEvents", "manager", "sources", "status", "statusSource", "title", "userName",
    ]
    static let factFields = [
        "attributes", "department", "displayName", "email", "employeeNumber", "externalId", "groups", "manager",
        "status", "title", "userName", "version",
    ]

    static func encode(_ identity: Identity) -> String {
        var out = ""
        out.reserveCapacity(1024)
        out += "{\"attributes\":"
        append(identity.attributes, to: &out)
        append("department", identity.department, to: &out)
        append("displayName", identity.displayName, to: &out)
        append("email", identity.email, to: &out)
        append("employeeNumber", identity.employeeNumber, to: &out)
        out += ",\"groups\":"
        append(identity.groups, to: &out)
        append("id", identity.id, to: &out)
        out += identity.isTombstone ? ",\"isTombstone\":true" : ",\"isTombstone\":false"
        out += ",\"lastEvents\":{"
        for (index, source) in identity.lastEvents.keys.sorted(by: Self.byRawValue).enumerated() {
            if index > 0 { out += "," }
            CanonicalJSON.appendString(source.rawValue, to: &out)
            out += ":"
            CanonicalJSON.appendString(identity.lastEvents[source]!, to: &out)
        }
        out += "}"
        append("manager", identity.manager, to: &out)
        out += ",\"sources\":{"
        for (index, source) in identity.sources.keys.sorted(by: Self.byRawValue).enumerated() {
            if index > 0 { out += "," }
            CanonicalJSON.appendString(source.rawValue, to: &out)
            out += ":"
            append(identity.sources[source]!, to: &out)
        }
        out += "}"
        append("status", identity.status.rawValue, to: &out)
        append("statusSource", identity.statusSource?.rawValue, to: &out)
        append("title", identity.title, to: &out)
        append("userName", identity.userName, to: &out)
        return out + "}"
    }

    private static func append(_ facts: IdentityFacts, to out: inout String) {
        out += "{\"attributes\":"
        append(facts.attributes, to: &out)
        append("department", facts.department, to: &out)
        append("displayName", facts.displayName, to: &out)
        append("email", facts.email, to: &out)
        append("employeeNumber", facts.employeeNumber, to: &out)
        append("externalId", facts.externalId, to: &out)
        out += ",\"groups\":"
        append(facts.groups, to: &out)
        append("manager", facts.manager, to: &out)
        append("status", facts.status?.rawValue, to: &out)
        append("title", facts.title, to: &out)
        append("userName", facts.userName, to: &out)
        append("version", facts.version, to: &out)
        out += "}"
    }

    private static func byRawValue(_ a: Source, _ b: Source) -> Bool {
        a.rawValue.utf8.lexicographicallyPrecedes(b.rawValue.utf8)
    }

    /// `,"key":"value"`, or nothing when `value` is nil (as `encodeIfPresent` does).
    private static func append(_ key: String, _ value: String?, to out: inout String) {
        guard let value else { return }
        out += ",\""
        out += key
        out += "\":"
        CanonicalJSON.appendString(value, to: &out)
    }

    private static func append(_ values: some Collection<String>, to out: inout String) {
        out += "["
        for (index, value) in values.enumerated() {
            if index > 0 { out += "," }
            CanonicalJSON.appendString(value, to: &out)
        }
        out += "]"
    }

    private static func append(_ attributes: [String: [String]], to out: inout String) {
        out += "{"
        for (index, key) in attributes.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }).enumerated() {
            if index > 0 { out += "," }
            CanonicalJSON.appendString(key, to: &out)
            out += ":"
            append(attributes[key]!, to: &out)
        }
        out += "}"
    }
}
