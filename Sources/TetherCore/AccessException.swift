import Foundation

/// An operator's exception to policy (SPEC §17): a grant no policy gives, for a bounded time,
/// or a deny that keeps a grant from one person even where policy gives it. Audited with the
/// operator as actor and approver; it ends at `until` through the scheduler.
public struct AccessException: Sendable, Hashable, Codable {
    /// What the exception does.
    public enum Effect: String, Sendable, Hashable, Codable {
        /// Adds a grant no policy gives.
        case grant
        /// Keeps grants covered by it from the subject; beats policy and grant exceptions.
        case deny
    }

    /// `x_` + 32 hex digits.
    public var id: String
    public var effect: Effect
    /// The identity's userName.
    public var subject: String
    public var agent: String
    public var scope: String
    /// A resource, or a prefix ending in `*` (as grants name them).
    public var resource: String
    /// When it ends; nil only for a deny that stands until removed.
    public var until: Date?
    /// Why, in the approver's words.
    public var reason: String
    /// Who approved it: the operator actor (`operator:<unix user>`), or a review campaign's.
    public var approver: String
    public var createdAt: Date

    public init(
        id: String, effect: Effect, subject: String, agent: String, scope: String, resource: String, until: Date?,
        reason: String, approver: String, createdAt: Date
    ) {
        self.id = id
        self.effect = effect
        self.subject = subject
        self.agent = agent
        self.scope = scope
        self.resource = resource
        self.until = until
        self.reason = reason
        self.approver = approver
        self.createdAt = createdAt
    }

    /// The grant a grant exception gives.
    public var grant: Grant { Grant(subject: subject, agent: agent, scope: scope, resource: resource) }

    /// Whether this exception's `(subject, agent, scope, resource)` covers every request
    /// `grant` covers: the same subject, agent and scope, and a resource that is the grant's
    /// or a prefix of it.
    public func covers(_ grant: Grant) -> Bool {
        guard grant.subject == subject, grant.agent == agent, grant.scope == scope else { return false }
        guard resource.hasSuffix("*") else { return resource == grant.resource }
        return grant.resource.hasPrefix(resource.dropLast())
    }

    /// Whether this exception covers a request for `resource` with `scope`.
    public func covers(scope requested: String, resource requestedResource: String) -> Bool {
        guard requested == scope else { return false }
        if resource.hasSuffix("*") { return requestedResource.hasPrefix(resource.dropLast()) }
        return resource == requestedResource
    }

    /// The lineage of the grant a grant exception gives `identity`.
    func lineage(policySet: String, identity: IdentityID?) -> Lineage {
        Lineage(
            policy: Self.policyPrefix + id, policySet: policySet, identity: identity,
            facts: ["exception \(id) approved by \(approver)\(until.map { " until \(Timestamp.string($0))" } ?? ""): \(reason)"])
    }

    /// A grant given by exception `x_…` names `exception:x_…` as its policy.
    public static let policyPrefix = "exception:"

    /// The exception id a lineage's policy names, when the grant came from an exception.
    public static func id(fromPolicy policy: String) -> String? {
        policy.hasPrefix(policyPrefix) ? String(policy.dropFirst(policyPrefix.count)) : nil
    }

    /// A fresh id: `x_` and 128 random bits in hex.
    public static func newID() -> String {
        var generator = SystemRandomNumberGenerator()
        return Hex.encode(prefix: "x_", high: generator.next(), low: generator.next())
    }
}

/// The exceptions in force, by subject: what derivation and the check consult.
public struct ExceptionSet: Sendable {
    /// Grant exceptions by subject.
    public private(set) var grants: [String: [AccessException]] = [:]
    /// Deny exceptions by subject.
    public private(set) var denies: [String: [AccessException]] = [:]

    /// No exception.
    public init() {}

    /// `exceptions`, in the order given (the first grant exception of a grant is its lineage).
    public init(_ exceptions: some Sequence<AccessException>) {
        for exception in exceptions { insert(exception) }
    }

    public var isEmpty: Bool { grants.isEmpty && denies.isEmpty }

    /// Adds (or replaces) one exception.
    public mutating func insert(_ exception: AccessException) {
        remove(id: exception.id, subject: exception.subject)
        switch exception.effect {
        case .grant: grants[exception.subject, default: []].append(exception)
        case .deny: denies[exception.subject, default: []].append(exception)
        }
    }

    /// Removes exception `id` of `subject`, if present.
    public mutating func remove(id: String, subject: String) {
        grants[subject]?.removeAll { $0.id == id }
        if grants[subject]?.isEmpty == true { grants[subject] = nil }
        denies[subject]?.removeAll { $0.id == id }
        if denies[subject]?.isEmpty == true { denies[subject] = nil }
    }

    /// The deny exception that keeps `grant` from its subject, if one covers it whole.
    public func deny(of grant: Grant) -> AccessException? {
        denies[grant.subject]?.first { $0.covers(grant) }
    }

    /// The deny exception that covers a request, if any: it may cover part of what a wider
    /// grant covers, so the check consults it even where the grant stays.
    public func deny(_ request: CheckRequest) -> AccessException? {
        denies[request.subject]?.first { $0.agent == request.agent && $0.covers(scope: request.scope, resource: request.resource) }
    }
}
