import Yams

/// The path to a value in the document, printed as `policies[2].when.all[0].attribute.in`.
struct NodePath: Sendable, Hashable, CustomStringConvertible {
    enum Component: Sendable, Hashable {
        case key(String)
        case index(Int)
    }

    var components: [Component] = []

    static let root = NodePath()

    func appending(_ key: String) -> NodePath { NodePath(components: components + [.key(key)]) }
    func appending(_ index: Int) -> NodePath { NodePath(components: components + [.index(index)]) }

    var description: String {
        var text = ""
        for component in components {
            switch component {
            case .key(let key): text += text.isEmpty ? key : ".\(key)"
            case .index(let index): text += "[\(index)]"
            }
        }
        return text
    }
}

/// Collects findings for one document and turns Yams marks into locations.
///
/// Not shared across tasks: one loader call owns it from start to finish.
final class FindingLog {
    let file: String
    private let edits: [TextEdit]
    private(set) var findings: [ConfigurationFinding] = []

    init(file: String, edits: [TextEdit]) {
        self.file = file
        self.edits = edits
    }

    var hasErrors: Bool { findings.contains { $0.severity == .error } }

    func location(of mark: Mark?, path: NodePath) -> ConfigurationLocation {
        guard let mark else { return ConfigurationLocation(file: file, line: 0, column: 0, keyPath: path.description) }
        let column = TextEdit.originalColumn(line: mark.line, column: mark.column, edits: edits)
        return ConfigurationLocation(file: file, line: mark.line, column: column, keyPath: path.description)
    }

    func report(_ severity: ConfigurationFinding.Severity, _ message: String, at location: ConfigurationLocation) {
        findings.append(ConfigurationFinding(severity: severity, location: location, message: message))
    }
}

/// One value of the document with its path; typed accessors report a finding and return nil on mismatch.
struct ConfigNode {
    let node: Node
    let path: NodePath
    let log: FindingLog

    var location: ConfigurationLocation { log.location(of: node.mark, path: path) }

    func error(_ message: String) { log.report(.error, message, at: location) }
    func warning(_ message: String) { log.report(.warning, message, at: location) }

    private var scalar: Node.Scalar? {
        if case .scalar(let scalar) = node { return scalar }
        return nil
    }

    private var isPlain: Bool { scalar?.style == .plain || scalar?.style == .any }

    /// True for `~`, `null` or nothing at all.
    var isNull: Bool {
        guard let scalar, isPlain else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar.string)
    }

    /// What the value is, for "expected X, found Y".
    var found: String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case .scalar(let scalar):
            if isNull { return "nothing (null)" }
            let text = scalar.string.count > 40 ? String(scalar.string.prefix(40)) + "…" : scalar.string
            return isPlain ? "'\(text)'" : "the quoted string '\(text)' (numbers and true/false go without quotes)"
        }
    }

    func typeError(_ expected: String) {
        error("expected \(expected), found \(found)")
    }

    /// The text of any non-null scalar; numbers and booleans are taken as written.
    func string(_ expected: String = "a string") -> String? {
        guard let scalar, !isNull else {
            typeError(expected)
            return nil
        }
        return scalar.string
    }

    /// A string that is not empty or only spaces.
    func nonEmptyString(_ expected: String = "a non-empty string") -> String? {
        guard let text = string(expected) else { return nil }
        guard !text.allSatisfy(\.isWhitespace) else {
            error("expected \(expected), found an empty string")
            return nil
        }
        return text
    }

    /// `true` or `false`, unquoted.
    func bool() -> Bool? {
        guard let scalar, isPlain, ["true", "false"].contains(scalar.string.lowercased()) else {
            typeError("true or false")
            return nil
        }
        return scalar.string.lowercased() == "true"
    }

    /// An unquoted whole number no smaller than `minimum`; `_` separators are allowed.
    func int(atLeast minimum: Int? = nil, atMost maximum: Int? = nil, expected: String = "a whole number") -> Int? {
        guard let scalar, isPlain, let value = Int(scalar.string.replacingOccurrences(of: "_", with: "")) else {
            typeError(expected)
            return nil
        }
        if let minimum, value < minimum {
            error("must be at least \(minimum), found \(value)")
            return nil
        }
        if let maximum, value > maximum {
            error("must be at most \(maximum), found \(value)")
            return nil
        }
        return value
    }

    /// An unquoted number, whole or decimal.
    func number(expected: String = "a number") -> Double? {
        guard let scalar, isPlain, let value = Double(scalar.string), value.isFinite else {
            typeError(expected)
            return nil
        }
        return value
    }

    /// A duration such as `500ms`, `30s`, `15m`, `1h` or `7d`; zero is refused unless `allowZero`.
    func duration(allowZero: Bool = false) -> Duration? {
        guard let text = string("a duration such as 30s") else { return nil }
        guard let duration = ConfigurationDuration.parse(text) else {
            error("invalid duration '\(text)'; expected a whole number and a unit: 500ms, 30s, 15m, 1h or 7d")
            return nil
        }
        if !allowZero, duration == .zero {
            error("must be longer than zero, found '\(text)'")
            return nil
        }
        return duration
    }

    /// One of an enumeration's values, listing the allowed ones when it is not.
    func oneOf<Value: CaseIterable & RawRepresentable>(_ type: Value.Type) -> Value? where Value.RawValue == String {
        oneOf(Array(Value.allCases))
    }

    /// One of `values`, listing them when the text is none of them.
    func oneOf<Value: RawRepresentable>(_ values: [Value]) -> Value? where Value.RawValue == String {
        let allowed = values.map(\.rawValue)
        guard let text = string("one of: \(allowed.joined(separator: ", "))") else { return nil }
        guard let value = Value(rawValue: text), allowed.contains(text) else {
            error("unknown value '\(text)'; expected one of: \(allowed.joined(separator: ", "))")
            return nil
        }
        return value
    }

    /// The items of a list.
    func list(_ expected: String = "a list") -> [ConfigNode]? {
        guard case .sequence(let sequence) = node else {
            typeError(expected)
            return nil
        }
        return Array(sequence).enumerated().map { index, item in
            ConfigNode(node: item, path: path.appending(index), log: log)
        }
    }

    /// A list of non-empty strings; an empty list is refused when `nonEmpty`.
    func stringList(nonEmpty: Bool, expected: String = "a list of strings") -> [String]? {
        guard let items = list(expected) else { return nil }
        if nonEmpty, items.isEmpty {
            error("the list is empty; expected at least one item in \(expected)")
            return nil
        }
        let strings = items.compactMap { $0.nonEmptyString() }
        return strings.count == items.count ? strings : nil
    }

    /// The entries of a mapping; keys outside `allowed` (when given) are reported and dropped.
    func mapping(allowed: [String]?, expected: String = "a mapping") -> ConfigMapping? {
        guard case .mapping(let mapping) = node else {
            typeError(expected)
            return nil
        }
        var entries: [ConfigMapping.Entry] = []
        var firstSeen: [String: ConfigurationLocation] = [:]
        for (keyNode, valueNode) in mapping {
            guard case .scalar(let scalar) = keyNode else {
                ConfigNode(node: keyNode, path: path, log: log).error(
                    "keys must be plain strings, found \(ConfigNode(node: keyNode, path: path, log: log).found)")
                continue
            }
            let key = YAMLDocument.originalKey(scalar.string)
            let keyPath = path.appending(key)
            let keyConfigNode = ConfigNode(node: keyNode, path: keyPath, log: log)
            if let first = firstSeen[key] {
                keyConfigNode.error(
                    "duplicate key '\(key)'; it is already set at line \(first.line), column \(first.column) "
                        + "and may appear only once in this mapping")
                continue
            }
            firstSeen[key] = keyConfigNode.location
            if let allowed, !allowed.contains(key) {
                keyConfigNode.error(ConfigNode.unknownKeyMessage(key, allowed: allowed))
                continue
            }
            entries.append(
                ConfigMapping.Entry(
                    key: key, keyNode: keyConfigNode, value: ConfigNode(node: valueNode, path: keyPath, log: log)))
        }
        return ConfigMapping(node: self, entries: entries)
    }

    static func unknownKeyMessage(_ key: String, allowed: [String]) -> String {
        let expected = allowed.joined(separator: ", ")
        if let suggestion = allowed.min(by: { editDistance(key, $0) < editDistance(key, $1) }),
            editDistance(key.lowercased(), suggestion.lowercased()) <= max(1, min(2, key.count / 3))
        {
            return "unknown key '\(key)'; did you mean '\(suggestion)'? Expected one of: \(expected)"
        }
        return "unknown key '\(key)'; expected one of: \(expected)"
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a)
        let b = Array(b)
        if a.isEmpty || b.isEmpty { return max(a.count, b.count) }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}

/// The known entries of one mapping, in document order, duplicates and unknown keys already reported.
struct ConfigMapping {
    struct Entry {
        let key: String
        let keyNode: ConfigNode
        let value: ConfigNode
    }

    let node: ConfigNode
    let entries: [Entry]

    /// The value under `key`, even when it is null; nil when the key is absent.
    func value(_ key: String) -> ConfigNode? { entries.first { $0.key == key }?.value }

    /// The value under `key`, nil when the key is absent or its value is null.
    func optional(_ key: String) -> ConfigNode? {
        guard let value = value(key), !value.isNull else { return nil }
        return value
    }

    /// The value under `key`; a missing key is reported, with `hint` saying what belongs there.
    func required(_ key: String, hint: String? = nil) -> ConfigNode? {
        if let value = value(key) { return value }
        let location = node.log.location(of: node.node.mark, path: node.path.appending(key))
        node.log.report(.error, "missing required key '\(key)'" + (hint.map { "; \($0)" } ?? ""), at: location)
        return nil
    }

    func contains(_ key: String) -> Bool { value(key) != nil }
}
