/// A field by which records from different sources are recognised as one person.
public enum CorrelationKey: String, Sendable, Hashable, Codable, CaseIterable {
    case employeeNumber, email, userName
}

/// What correlation reads of a known identity: its key in a source and the merged values
/// it is correlated by. An ``Identity``, or what a decision keeps of one.
public protocol Correlatable {
    func externalId(in source: Source) -> String?
    /// The normalised value of `key` (email in lower case), as ``Correlator`` compares it.
    func correlationValue(_ key: CorrelationKey) -> String?
}

extension Identity: Correlatable {
    public func externalId(in source: Source) -> String? { sources[source]?.externalId }
    public func correlationValue(_ key: CorrelationKey) -> String? { Correlator.value(key, of: self) }
}

/// Joins a source record to an existing identity (SPEC §3): by the source's own key first,
/// then by `lifecycle.correlate` in order; email is compared case-insensitively.
public struct Correlator: Sendable {
    public let keys: [CorrelationKey]

    public init(keys: [CorrelationKey] = [.employeeNumber, .email, .userName]) { self.keys = keys }

    /// The identity among `candidates` that `facts` from `source` belong to, if any.
    ///
    /// A candidate that already carries a different key for the same source is another person.
    public func match<Candidate: Correlatable>(
        _ facts: IdentityFacts, from source: Source, among candidates: [Candidate]
    ) -> Candidate? {
        if let key = facts.externalId,
            let linked = candidates.first(where: { $0.externalId(in: source) == key })
        {
            return linked
        }
        let eligible = candidates.filter { candidate in
            guard let theirs = candidate.externalId(in: source), let ours = facts.externalId else { return true }
            return theirs == ours
        }
        for key in keys {
            guard let value = Correlator.value(key, of: facts), !value.isEmpty else { continue }
            if let found = eligible.first(where: { $0.correlationValue(key) == value }) {
                return found
            }
        }
        return nil
    }

    /// The normalised value of `key` in a source record.
    public static func value(_ key: CorrelationKey, of facts: IdentityFacts) -> String? {
        switch key {
        case .employeeNumber: facts.employeeNumber
        case .email: facts.email?.lowercased()
        case .userName: facts.userName
        }
    }

    /// The normalised value of `key` for an identity.
    public static func value(_ key: CorrelationKey, of identity: Identity) -> String? {
        switch key {
        case .employeeNumber: identity.employeeNumber
        case .email: identity.email?.lowercased()
        case .userName: identity.userName
        }
    }
}
