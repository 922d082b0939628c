/// What happens to an agent when its sponsor leaves (SPEC §5).
public enum SponsorLeavePolicy: String, Sendable, Hashable, Codable {
    /// Quarantine the agent; it is released when the sponsor is active again.
    case quarantine
    /// Quarantine the agent and propose the sponsor's manager; an operator must confirm.
    case transferToManager = "transfer-to-manager"
}

/// Whether an agent acts for whoever invokes it or as itself.
public enum AgentKind: String, Sendable, Hashable, Codable {
    /// Acts for the identity that invokes it; its grants' subject is that identity's userName.
    case delegated
    /// Acts as itself; its grants' subject is `agent:<id>`.
    case autonomous
}

/// A grant an autonomous agent holds by declaration rather than by policy.
public struct StaticGrant: Sendable, Hashable, Codable {
    public var scopes: [String]
    public var resource: String

    public init(scopes: [String], resource: String) {
        self.scopes = scopes
        self.resource = resource
    }
}

/// An AI agent declared in configuration.
public struct Agent: Sendable, Hashable, Codable {
    public var id: String
    public var kind: AgentKind
    /// The userName of the accountable human identity, as configured.
    public var sponsor: String
    public var onSponsorLeave: SponsorLeavePolicy
    /// Autonomous agents only: what the agent holds while its sponsor is active.
    public var grants: [StaticGrant]

    public init(
        id: String, kind: AgentKind, sponsor: String,
        onSponsorLeave: SponsorLeavePolicy = .quarantine, grants: [StaticGrant] = []
    ) {
        self.id = id
        self.kind = kind
        self.sponsor = sponsor
        self.onSponsorLeave = onSponsorLeave
        self.grants = grants
    }

    /// The subject of this agent's own grants (autonomous agents).
    public var subject: String { "agent:\(id)" }
}

/// What Tether remembers about an agent between runs: its sponsor and its quarantine.
public struct AgentState: Sendable, Hashable, Codable {
    public var agent: String
    /// The sponsor set by an operator (`tether agents sponsor`); overrides the configured one.
    public var sponsorOverride: String?
    public var quarantined: Bool
    public var reason: String?
    /// With `transfer-to-manager`: the manager proposed as the new sponsor.
    public var proposedSponsor: String?
    /// With `transfer-to-manager`: the quarantine holds until an operator names a sponsor.
    public var awaitsOperator: Bool

    public init(
        agent: String, sponsorOverride: String? = nil, quarantined: Bool, reason: String? = nil,
        proposedSponsor: String? = nil, awaitsOperator: Bool = false
    ) {
        self.agent = agent
        self.sponsorOverride = sponsorOverride
        self.quarantined = quarantined
        self.reason = reason
        self.proposedSponsor = proposedSponsor
        self.awaitsOperator = awaitsOperator
    }
}
