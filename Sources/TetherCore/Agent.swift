import Foundation

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

/// Where an agent comes from (SPEC §15): the configuration file, a SCIM client or an operator.
public enum AgentSource: String, Sendable, Hashable, Codable, CaseIterable {
    /// Declared in the configuration file; read-only everywhere else.
    case config
    /// Registered by a SCIM client (`/scim/v2/Agents`).
    case scim
    /// Registered by an operator (`tether agents add`).
    case `operator`
}

/// An AI agent (a non-human identity): declared in configuration or registered at runtime
/// (SPEC §5, §15).
public struct Agent: Sendable, Hashable {
    public var id: String
    public var kind: AgentKind
    /// The userNames of the accountable human identities, in the order given: the agent keeps
    /// its grants while at least one of them is an active identity.
    public var sponsors: [String]
    public var onSponsorLeave: SponsorLeavePolicy
    /// Autonomous agents only: what the agent holds while a sponsor is active.
    public var grants: [StaticGrant]
    /// A name for people.
    public var displayName: String?
    /// What the agent is for.
    public var description: String?
    /// A free classification, e.g. `assistant` or `workflow` (the SCIM `agentType`).
    public var agentType: String?
    /// False for a disabled agent: it holds no grant and every check for it is denied.
    public var active: Bool
    /// Where the agent comes from.
    public var source: AgentSource
    /// When it was registered; nil for agents declared in configuration.
    public var createdAt: Date?
    /// When its registration last changed; nil for agents declared in configuration.
    public var updatedAt: Date?
    /// The identifier the SCIM client that registered it knows it by (`externalId`), kept as given.
    public var externalId: String?

    public init(
        id: String, kind: AgentKind, sponsors: [String], onSponsorLeave: SponsorLeavePolicy = .quarantine,
        grants: [StaticGrant] = [], displayName: String? = nil, description: String? = nil, agentType: String? = nil,
        active: Bool = true, source: AgentSource = .config, createdAt: Date? = nil, updatedAt: Date? = nil,
        externalId: String? = nil
    ) {
        self.id = id
        self.kind = kind
        self.sponsors = sponsors
        self.onSponsorLeave = onSponsorLeave
        self.grants = grants
        self.displayName = displayName
        self.description = description
        self.agentType = agentType
        self.active = active
        self.source = source
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.externalId = externalId
    }

    /// An agent with one sponsor, as configuration's `sponsor: x` declares it.
    public init(
        id: String, kind: AgentKind, sponsor: String, onSponsorLeave: SponsorLeavePolicy = .quarantine,
        grants: [StaticGrant] = []
    ) {
        self.init(id: id, kind: kind, sponsors: [sponsor], onSponsorLeave: onSponsorLeave, grants: grants)
    }

    /// The first sponsor; setting it makes it the only one.
    public var sponsor: String {
        get { sponsors.first ?? "" }
        set { sponsors = [newValue] }
    }

    /// The subject of this agent's own grants (autonomous agents).
    public var subject: String { "agent:\(id)" }

    /// Whether the agent was registered at runtime (SCIM or an operator) rather than declared
    /// in configuration.
    public var isRegistered: Bool { source != .config }
}

extension Agent: Codable {
    private enum CodingKeys: String, CodingKey {
        case id, kind, sponsor, sponsors, onSponsorLeave, grants, displayName, description, agentType, active, source
        case createdAt, updatedAt, externalId
    }

    /// Reads `sponsor: x` as `sponsors: [x]`; the fields added with the registry are optional.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let sponsors =
            try container.decodeIfPresent([String].self, forKey: .sponsors)
            ?? [try container.decode(String.self, forKey: .sponsor)]
        self.init(
            id: try container.decode(String.self, forKey: .id), kind: try container.decode(AgentKind.self, forKey: .kind),
            sponsors: sponsors,
            onSponsorLeave: try container.decodeIfPresent(SponsorLeavePolicy.self, forKey: .onSponsorLeave) ?? .quarantine,
            grants: try container.decodeIfPresent([StaticGrant].self, forKey: .grants) ?? [],
            displayName: try container.decodeIfPresent(String.self, forKey: .displayName),
            description: try container.decodeIfPresent(String.self, forKey: .description),
            agentType: try container.decodeIfPresent(String.self, forKey: .agentType),
            active: try container.decodeIfPresent(Bool.self, forKey: .active) ?? true,
            source: try container.decodeIfPresent(AgentSource.self, forKey: .source) ?? .config,
            createdAt: try container.decodeIfPresent(Date.self, forKey: .createdAt),
            updatedAt: try container.decodeIfPresent(Date.self, forKey: .updatedAt),
            externalId: try container.decodeIfPresent(String.self, forKey: .externalId))
    }

    /// One sponsor is written as `sponsor`, several as `sponsors`; fields at their defaults are
    /// left out, so a configuration's policy-set hash is what it was before the registry.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(kind, forKey: .kind)
        if sponsors.count == 1 {
            try container.encode(sponsors[0], forKey: .sponsor)
        } else {
            try container.encode(sponsors, forKey: .sponsors)
        }
        try container.encode(onSponsorLeave, forKey: .onSponsorLeave)
        try container.encode(grants, forKey: .grants)
        try container.encodeIfPresent(displayName, forKey: .displayName)
        try container.encodeIfPresent(description, forKey: .description)
        try container.encodeIfPresent(agentType, forKey: .agentType)
        if !active { try container.encode(active, forKey: .active) }
        if source != .config { try container.encode(source, forKey: .source) }
        try container.encodeIfPresent(createdAt, forKey: .createdAt)
        try container.encodeIfPresent(updatedAt, forKey: .updatedAt)
        try container.encodeIfPresent(externalId, forKey: .externalId)
    }
}

/// What Tether remembers about an agent between runs: its sponsor and its quarantine.
public struct AgentState: Sendable, Hashable, Codable {
    public var agent: String
    /// The sponsor set by an operator (`tether agents sponsor`); replaces the agent's own
    /// sponsors until the agent's registration names its sponsors again.
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
