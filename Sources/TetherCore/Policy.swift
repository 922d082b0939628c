/// A test on one identity field or attribute (SPEC §4).
public enum AttributeTest: Sendable, Hashable, Codable {
    case equals(String)
    case `in`([String])
    case present(Bool)
    case prefix(String)
    /// An integer attribute with all these bits set, e.g. Active Directory's
    /// `userAccountControl` disabled bit (2).
    case bitsSet(Int)
}

/// A policy condition over an identity's facts.
public indirect enum Condition: Sendable, Hashable, Codable {
    case all([Condition])
    case any([Condition])
    case not(Condition)
    /// Membership, transitive, by a group's cn, DN or SCIM displayName.
    case memberOf(String)
    case attribute(name: String, test: AttributeTest)
}

/// What a policy grants to each identity it matches.
public struct GrantTemplate: Sendable, Hashable, Codable {
    public var agent: String
    public var scopes: [String]
    /// May contain `{field}` placeholders, expanded from the identity.
    public var resource: String

    public init(agent: String, scopes: [String], resource: String) {
        self.agent = agent
        self.scopes = scopes
        self.resource = resource
    }
}

/// A named rule: identities for which `when` holds receive `grant`.
public struct Policy: Sendable, Hashable, Codable {
    public var id: String
    public var description: String?
    public var when: Condition
    public var grant: [GrantTemplate]

    public init(id: String, description: String? = nil, when: Condition, grant: [GrantTemplate]) {
        self.id = id
        self.description = description
        self.when = when
        self.grant = grant
    }
}

/// The agents and policies in force, with a hash that names this exact set.
public struct PolicySet: Sendable, Hashable {
    public let agents: [Agent]
    public let policies: [Policy]
    /// `sha256:` + hex of the canonical encoding of agents and policies.
    public let hash: String
    private let agentsByID: [String: Agent]
    /// Each policy's grant resources, parsed once: `[policy][template]`, as in ``policies``.
    let resourceTemplates: [[ResourceTemplate.Parsed]]

    public init(agents: [Agent], policies: [Policy]) {
        self.agents = agents
        self.policies = policies
        self.agentsByID = Dictionary(agents.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        self.resourceTemplates = policies.map { $0.grant.map { ResourceTemplate.Parsed($0.resource) } }
        self.hash = "sha256:" + Hex.sha256(PolicySet.canonicalText(agents: agents, policies: policies))
    }

    public func agent(_ id: String) -> Agent? { agentsByID[id] }

    private init(agents: [Agent], policies: [Policy], hash: String, resourceTemplates: [[ResourceTemplate.Parsed]]) {
        self.agents = agents
        self.policies = policies
        self.hash = hash
        self.agentsByID = Dictionary(agents.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        self.resourceTemplates = resourceTemplates
    }

    /// This policy set with `registered` agents in force beside the configured ones (SPEC
    /// §15). The hash stays the configuration's: it names what the file declares, and a
    /// registration is audited on its own.
    public func adding(registered: [Agent]) -> PolicySet {
        let configured = Set(agents.map(\.id))
        let added = registered.filter { !configured.contains($0.id) }
        guard !added.isEmpty else { return self }
        return PolicySet(agents: agents + added, policies: policies, hash: hash, resourceTemplates: resourceTemplates)
    }

    private static func canonicalText(agents: [Agent], policies: [Policy]) -> String {
        struct Body: Encodable {
            let agents: [Agent]
            let policies: [Policy]
        }
        return CanonicalJSON.encode(Body(agents: agents, policies: policies))
    }
}
