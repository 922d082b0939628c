/// `{field}` placeholders in grant resources, expanded from an identity (SPEC §4).
public enum ResourceTemplate {
    /// Every expansion of `template` for `identity`, with the facts each one used.
    ///
    /// A multi-valued field yields one resource per value; a missing field yields none, so a
    /// policy never grants a resource it could not name.
    public static func expand(_ template: String, for identity: Identity) -> [(resource: String, facts: [String])] {
        expand(Parsed(template), for: identity)
    }

    /// ``expand(_:for:)`` of a template parsed once, for expanding it for many identities.
    public static func expand(_ template: Parsed, for identity: Identity) -> [(resource: String, facts: [String])] {
        var results: [(resource: String, facts: [String])] = [(template.literals[0], [])]
        for (index, field) in template.fields.enumerated() {
            let values = identity.fieldValues(of: field)
            if values.isEmpty { return [] }
            let literal = template.literals[index + 1]
            results = results.flatMap { partial in
                values.map { value in
                    (partial.resource + value + literal, partial.facts + ["\(field)=\(value)"])
                }
            }
        }
        return results
    }

    /// The field names a template refers to.
    public static func fields(in template: String) -> [String] {
        Parsed(template).fields
    }

    /// A template split into its literal text and its fields.
    public struct Parsed: Sendable, Hashable {
        /// The text before each field, and after the last one: one more than ``fields``.
        public let literals: [String]
        public let fields: [String]

        /// A `{` without a closing `}` is literal text, as is everything after it.
        public init(_ template: String) {
            var literals: [String] = []
            var fields: [String] = []
            var rest = Substring(template)
            while let open = rest.firstIndex(of: "{"), let close = rest[open...].firstIndex(of: "}") {
                literals.append(String(rest[..<open]))
                fields.append(String(rest[rest.index(after: open)..<close]))
                rest = rest[rest.index(after: close)...]
            }
            literals.append(String(rest))
            self.literals = literals
            self.fields = fields
        }
    }
}
