/// One entitlement: `subject` may use `agent` with `scope` on `resource` (SPEC §1).
public struct Grant: Sendable, Hashable, Codable, Comparable {
    public var subject: String
    public var agent: String
    public var scope: String
    public var resource: String

    public init(subject: String, agent: String, scope: String, resource: String) {
        self.subject = subject
        self.agent = agent
        self.scope = scope
        self.resource = resource
    }

    /// `g_` + the first 32 hex digits of SHA-256 of `subject\nagent\nscope\nresource`.
    public var id: String {
        "g_" + String(Hex.sha256("\(subject)\n\(agent)\n\(scope)\n\(resource)").prefix(32))
    }

    /// Whether this grant covers a request for `resource`: exact, or by prefix when the
    /// grant's resource ends in `*`.
    public func covers(resource requested: String) -> Bool {
        if resource.hasSuffix("*") { return requested.hasPrefix(resource.dropLast()) }
        return resource == requested
    }

    public static func < (lhs: Grant, rhs: Grant) -> Bool {
        (lhs.subject, lhs.agent, lhs.scope, lhs.resource)
            < (rhs.subject, rhs.agent, rhs.scope, rhs.resource)
    }
}

/// What justifies a grant: the policy, the policy set, and the facts and events it rests on.
public struct Lineage: Sendable, Hashable, Codable {
    /// The policy id, or `agent:<id>` for an autonomous agent's declared grant.
    public var policy: String
    /// `sha256:…` of the policy set in force when the grant was derived.
    public var policySet: String
    /// The identity the grant derives from (nil for autonomous agents).
    public var identity: IdentityID?
    /// Human-readable facts used: `memberOf support`, `department=Support`.
    public var facts: [String]
    /// The version of each source's record that was applied.
    public var versions: [String: String]
    /// The last event applied from each source.
    public var events: [String: String]

    public init(
        policy: String, policySet: String, identity: IdentityID? = nil, facts: [String] = [],
        versions: [String: String] = [:], events: [String: String] = [:]
    ) {
        self.policy = policy
        self.policySet = policySet
        self.identity = identity
        self.facts = facts
        self.versions = versions
        self.events = events
    }
}

/// A grant together with the lineage that justifies it.
public struct JustifiedGrant: Sendable, Hashable, Codable {
    public var grant: Grant
    public var lineage: Lineage

    public init(grant: Grant, lineage: Lineage) {
        self.grant = grant
        self.lineage = lineage
    }
}
