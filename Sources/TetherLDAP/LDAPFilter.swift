/// Builds LDAP search filters (RFC 4515) from configuration and values.
///
/// Every value that enters a filter goes through ``escape(_:)``, so a userName or timestamp
/// can never change the filter's structure (`*`, `(`, `)`, `\` and NUL are escaped).
public enum LDAPFilter {
    /// `value` escaped for use as an assertion value (RFC 4515 §3): `*` `(` `)` `\` NUL
    /// become `\2a` `\28` `\29` `\5c` `\00`. Other bytes, UTF-8 included, pass unchanged.
    public static func escape(_ value: String) -> String {
        var escaped = ""
        escaped.reserveCapacity(value.utf8.count)
        for scalar in value.unicodeScalars {
            switch scalar {
            case "*": escaped += "\\2a"
            case "(": escaped += "\\28"
            case ")": escaped += "\\29"
            case "\\": escaped += "\\5c"
            case "\0": escaped += "\\00"
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped
    }

    /// `(attribute=value)` with the value escaped.
    public static func equality(_ attribute: String, _ value: String) -> String {
        "(\(attribute)=\(escape(value)))"
    }

    /// `(attribute>=value)` with the value escaped.
    public static func greaterOrEqual(_ attribute: String, _ value: String) -> String {
        "(\(attribute)>=\(escape(value)))"
    }

    /// A configured filter in parentheses, as RFC 4515 requires; `objectClass=person` is
    /// accepted from configuration and wrapped.
    public static func parenthesized(_ filter: String) -> String {
        let trimmed = filter.trimmingWhitespace()
        if trimmed.isEmpty { return "(objectClass=*)" }
        return trimmed.hasPrefix("(") ? trimmed : "(\(trimmed))"
    }

    /// The conjunction of `filters`; a single filter is returned as it is.
    public static func and(_ filters: [String]) -> String {
        let parts = filters.map(parenthesized)
        return parts.count == 1 ? parts[0] : "(&\(parts.joined()))"
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var text = Substring(self)
        while let first = text.first, first.isWhitespace { text.removeFirst() }
        while let last = text.last, last.isWhitespace { text.removeLast() }
        return String(text)
    }
}
