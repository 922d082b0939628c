import Foundation
import TetherCore
import TetherEngine

/// The `--json` shapes of `tether agents` and its subcommands (SPEC §10, §15).
extension AdminModels {
    /// One agent: configured or registered, its sponsors and whether it may hold grants.
    public struct AgentRow: Codable, Sendable, Equatable {
        public var id, kind, status: String
        /// The first sponsor in force (SPEC §10's `sponsor`).
        public var sponsor: String
        /// Every sponsor in force: an operator's override, else the agent's own.
        public var sponsors: [String]
        /// Those sponsors that are active identities now.
        public var activeSponsors: [String]
        /// `config`, `scim` or `operator`.
        public var source: String
        /// False for a disabled registered agent.
        public var active: Bool
        public var displayName: String?
        public var description: String?
        public var agentType: String?
        public var reason: String?
        public var proposedSponsor: String?
        public var onSponsorLeave: String
        /// An autonomous agent's declared grants.
        public var grants: [GrantSpec]?
        public var createdAt: String?
        public var updatedAt: String?
        /// When a check last allowed something through it; absent while none has.
        public var lastUsed: String?

        init(_ listing: AgentListing) {
            let agent = listing.agent
            let state = listing.state
            id = agent.id
            kind = agent.kind.rawValue
            sponsors = listing.sponsors
            sponsor = listing.sponsors.first ?? ""
            activeSponsors = listing.activeSponsors
            source = agent.source.rawValue
            active = agent.active
            displayName = agent.displayName
            description = agent.description
            agentType = agent.agentType
            if !agent.active {
                status = "disabled"
                reason = "disabled"
            } else {
                status = state?.quarantined == false ? "active" : "quarantined"
                reason = state?.quarantined == false ? nil : state?.reason ?? "not yet evaluated"
            }
            proposedSponsor = state?.proposedSponsor
            onSponsorLeave = agent.onSponsorLeave.rawValue
            grants = agent.grants.isEmpty ? nil : agent.grants.map { GrantSpec(scopes: $0.scopes, resource: $0.resource) }
            createdAt = agent.createdAt.map(Timestamp.string)
            updatedAt = agent.updatedAt.map(Timestamp.string)
        }
    }

    /// An autonomous agent's grant: scopes on one resource.
    public struct GrantSpec: Codable, Sendable, Equatable {
        public var scopes: [String]
        public var resource: String

        public init(scopes: [String], resource: String) {
            self.scopes = scopes
            self.resource = resource
        }
    }

    /// `POST /v1/agents` (every field but the optional ones) and `PATCH /v1/agents/{id}`
    /// (only the fields to change).
    public struct AgentBody: Codable, Sendable, Equatable {
        public var id: String?
        public var kind: String?
        public var sponsors: [String]?
        public var displayName: String?
        public var description: String?
        public var agentType: String?
        public var onSponsorLeave: String?
        public var grants: [GrantSpec]?

        public init(
            id: String? = nil, kind: String? = nil, sponsors: [String]? = nil, displayName: String? = nil,
            description: String? = nil, agentType: String? = nil, onSponsorLeave: String? = nil, grants: [GrantSpec]? = nil
        ) {
            self.id = id
            self.kind = kind
            self.sponsors = sponsors
            self.displayName = displayName
            self.description = description
            self.agentType = agentType
            self.onSponsorLeave = onSponsorLeave
            self.grants = grants
        }
    }

    /// `POST /v1/agents/{id}/sponsors`: sponsors to add and to remove.
    public struct SponsorsBody: Codable, Sendable, Equatable {
        public var add: [String]
        public var remove: [String]

        public init(add: [String], remove: [String]) {
            self.add = add
            self.remove = remove
        }
    }

    /// What a registry change did: the audit action, the revision (audit seq) that shows it
    /// (absent when nothing changed), the agent after it and the plan committed with it.
    public struct AgentResult: Codable, Sendable, Equatable {
        public var action: String
        public var revision: Int?
        public var agent: AgentRow
        public var plan: PlanRow
    }

    /// An agent one departure away from quarantine: exactly one of its sponsors is active.
    public struct OneSponsorRow: Codable, Sendable, Equatable {
        public var id: String
        public var sponsors: [String]
        public var activeSponsor: String
    }
}
