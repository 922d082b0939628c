/// `{field}` placeholders in grant resources, expanded from an identity (SPEC §4).
public enum ResourceTemplate {
    /// Every expansion of `template` for `identity`, with the facts each one used.
    ///
    /// A multi-valued field yields one resource per value; a missing field yields none, so a
    /// policy never grants a resource it could not name.
    public static func expand(_ template: String, for identity: Identity) -> [(resource: String, facts: [String])] {
        var results: [(resource: String, facts: [String])] = [("", [])]
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{") {
            guard let close = rest[open...].firstIndex(of: "}") else { break }
            let literal = rest[..<open]
            let field = String(rest[rest.index(after: open)..<close])
            let values = identity.values(of: field)
            if values.isEmpty { return [] }
            results = results.flatMap { partial in
                values.map { value in
                    (partial.resource + literal + value, partial.facts + ["\(field)=\(value)"])
                }
            }
            rest = rest[rest.index(after: close)...]
        }
        return results.map { ($0.resource + rest, $0.facts) }
    }

    /// The field names a template refers to.
    public static func fields(in template: String) -> [String] {
        var fields: [String] = []
        var rest = Substring(template)
        while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
            fields.append(String(rest[rest.index(after: open)..<close]))
            rest = rest[rest.index(after: close)...]
        }
        return fields
    }
}
