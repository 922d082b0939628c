/// A field by which records from different sources are recognised as one person.
public enum CorrelationKey: String, Sendable, Hashable, Codable, CaseIterable {
    case employeeNumber, email, userName
}

/// Joins a source record to an existing identity (SPEC §3): by the source's own key first,
/// then by `lifecycle.correlate` in order; email is compared case-insensitively.
public struct Correlator: Sendable {
    public let keys: [CorrelationKey]

    public init(keys: [CorrelationKey] = [.employeeNumber, .email, .userName]) { self.keys = keys }

    /// The identity among `candidates` that `facts` from `source` belong to, if any.
    ///
    /// A candidate that already carries a different key for the same source is another person.
    public func match(_ facts: IdentityFacts, from source: Source, among candidates: [Identity]) -> Identity? {
        if let key = facts.externalId,
            let linked = candidates.first(where: { $0.sources[source]?.externalId == key })
        {
            return linked
        }
        let eligible = candidates.filter { candidate in
            guard let theirs = candidate.sources[source]?.externalId, let ours = facts.externalId else { return true }
            return theirs == ours
        }
        for key in keys {
            guard let value = Correlator.value(key, of: facts), !value.isEmpty else { continue }
            if let found = eligible.first(where: { Correlator.value(key, of: $0) == value }) {
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
