import Foundation

extension Condition {
    /// Whether the condition holds for `identity`; `facts` collects what made it hold.
    public func evaluate(_ identity: Identity, facts: inout [String]) -> Bool {
        switch self {
        case .all(let conditions):
            var collected: [String] = []
            for condition in conditions where !condition.evaluate(identity, facts: &collected) {
                return false
            }
            facts += collected
            return true
        case .any(let conditions):
            for condition in conditions {
                var collected: [String] = []
                if condition.evaluate(identity, facts: &collected) {
                    facts += collected
                    return true
                }
            }
            return false
        case .not(let condition):
            var ignored: [String] = []
            if condition.evaluate(identity, facts: &ignored) { return false }
            facts.append("not(\(condition.summary))")
            return true
        case .memberOf(let group):
            guard identity.isMember(of: group) else { return false }
            facts.append("memberOf \(group)")
            return true
        case .attribute(let name, let test):
            guard let matched = test.match(identity.fieldValues(of: name)) else { return false }
            facts.append(matched.isEmpty ? "\(name) \(test.summary)" : "\(name)=\(matched)")
            return true
        }
    }

    /// Whether the condition holds for `identity`, without collecting facts.
    public func holds(for identity: Identity) -> Bool {
        var ignored: [String] = []
        return evaluate(identity, facts: &ignored)
    }

    /// A short text for reasons and lineage.
    public var summary: String {
        switch self {
        case .all(let conditions): "all(\(conditions.map(\.summary).joined(separator: ", ")))"
        case .any(let conditions): "any(\(conditions.map(\.summary).joined(separator: ", ")))"
        case .not(let condition): "not(\(condition.summary))"
        case .memberOf(let group): "memberOf \(group)"
        case .attribute(let name, let test): "\(name) \(test.summary)"
        }
    }
}

extension AttributeTest {
    /// The value that satisfied the test, "" when the test holds without one, nil when it fails.
    func match(_ values: some Sequence<String>) -> String? {
        switch self {
        case .equals(let wanted):
            return values.first { $0 == wanted }
        case .in(let allowed):
            return values.first { allowed.contains($0) }
        case .present(let wanted):
            return values.contains { !$0.isEmpty } == wanted ? "" : nil
        case .prefix(let prefix):
            return values.first { $0.hasPrefix(prefix) }
        case .bitsSet(let bits):
            return values.first { value in
                guard let number = Int(value.trimmingCharacters(in: .whitespaces)) else { return false }
                return number & bits == bits
            }
        }
    }

    var summary: String {
        switch self {
        case .equals(let value): "equals \(value)"
        case .in(let values): "in [\(values.joined(separator: ", "))]"
        case .present(let present): present ? "present" : "absent"
        case .prefix(let prefix): "prefix \(prefix)"
        case .bitsSet(let bits): "bitsSet \(bits)"
        }
    }
}
