import Foundation
import TetherCore
import TetherStore

/// An agent as operators and SCIM clients see it: where it comes from, its sponsors in
/// force and which of them are active, and whether it may hold grants (SPEC §15).
public struct AgentListing: Sendable, Hashable {
    /// Whether the agent may hold grants.
    public enum Status: String, Sendable, Hashable, Codable {
        /// At least one sponsor is active: the agent holds what policy gives it.
        case active
        /// No sponsor is active (or an operator must name one): it holds nothing.
        case quarantined
        /// A registered agent set inactive: it holds nothing and every check is denied.
        case disabled
    }

    /// The agent as configured or registered.
    public var agent: Agent
    /// What Tether remembers of it: quarantine, an operator's sponsor override.
    public var state: AgentState?
    /// The sponsors in force: the operator's override when there is one, else the agent's own.
    public var sponsors: [String]
    /// Those of ``sponsors`` that are active identities now.
    public var activeSponsors: [String]

    public init(agent: Agent, state: AgentState?, sponsors: [String], activeSponsors: [String]) {
        self.agent = agent
        self.state = state
        self.sponsors = sponsors
        self.activeSponsors = activeSponsors
    }

    public var status: Status {
        if !agent.active { return .disabled }
        return state?.quarantined == true ? .quarantined : .active
    }
}

extension Engine {
    /// Every agent in the effective set: the configured ones in file order, then the
    /// registered ones (disabled included) in the order registered.
    /// Waits for no decision in progress, once the registry is read.
    public func agents() async throws -> [AgentListing] {
        let agents = try await effectiveAgents()
        return try await store.inspect { reads in
            let states = try reads.agentStates()
            return try agents.map { try Self.listing($0, state: states[$0.id], reads: reads) }
        }
    }

    /// One agent of the effective set, or nil when no agent has this id.
    public func agent(id: String) async throws -> AgentListing? {
        guard let agent = try await effectiveAgents().first(where: { $0.id == id }) else { return nil }
        return try await store.inspect { reads in
            try Self.listing(agent, state: try reads.agentStates()[agent.id], reads: reads)
        }
    }

    /// Registers `agent` (source `scim` or `operator`) and gives it what policy and its
    /// declared grants give, in one commit audited `agent.registered` (SPEC §15).
    ///
    /// Throws ``EngineError``: `.invalidAgent` (id, sponsors, grants), `.agentExists` (an
    /// agent of this id is registered or configured), `.tooFewSponsors` (`agents.minSponsors`).
    public func registerAgent(_ agent: Agent, actor: Actor) async throws -> AgentOutcome {
        try await lock()
        defer { gate.unlock() }
        var agent = agent
        guard agent.isRegistered else {
            throw EngineError(.invalidAgent, "a registered agent's source is scim or operator, not config")
        }
        try Self.validate(agent)
        if configuration.policySet.agent(agent.id) != nil {
            throw EngineError(.agentExists, "agent \(agent.id) is declared in \(configurationFileName); choose another id")
        }
        if registered?.contains(where: { $0.id == agent.id }) == true {
            throw EngineError(.agentExists, "agent \(agent.id) is already registered; update it instead")
        }
        let now = clock.now()
        agent.createdAt = now
        agent.updatedAt = now
        return try await commitRegistry(
            .agentRegistered, agent: agent, next: (registered ?? []) + [agent], sponsorsChanged: true, actor: actor)
    }

    /// Replaces registered agent `agent.id`'s registration with `agent` (its source and
    /// creation time kept), and brings its grants and quarantine in line, in one commit:
    /// `agent.disabled` when it turns inactive, else `agent.updated`. Naming other sponsors
    /// ends an operator's sponsor override. Other sponsors, or enabling the agent again, must
    /// meet `agents.minSponsors`; other changes never fail for it. Nothing changes (revision
    /// nil) when `agent` is what is registered.
    public func updateAgent(_ agent: Agent, actor: Actor) async throws -> AgentOutcome {
        try await lock()
        defer { gate.unlock() }
        return try await updateHoldingLock(agent, actor: actor)
    }

    private func updateHoldingLock(_ agent: Agent, actor: Actor) async throws -> AgentOutcome {
        let existing = try registeredAgent(agent.id)
        var agent = agent
        agent.source = existing.source
        agent.createdAt = existing.createdAt
        agent.updatedAt = existing.updatedAt
        try Self.validate(agent)
        if agent == existing { return AgentOutcome(agent: existing, action: .agentUpdated, plan: Plan(scope: .agent(agent.id), steps: [])) }
        agent.updatedAt = clock.now()
        let next = (registered ?? []).map { $0.id == agent.id ? agent : $0 }
        return try await commitRegistry(
            existing.active && !agent.active ? .agentDisabled : .agentUpdated, agent: agent, next: next,
            sponsorsChanged: agent.sponsors != existing.sponsors, enabled: !existing.active && agent.active, actor: actor)
    }

    /// Changes registered agent `id` as `change` says, from its registration as it is under
    /// the gate (a SCIM PATCH, `tether agents update`), then as ``updateAgent(_:actor:)``.
    /// The id cannot change.
    public func updateAgent(
        _ id: String, actor: Actor, _ change: @Sendable (inout Agent) throws -> Void
    ) async throws -> AgentOutcome {
        try await lock()
        defer { gate.unlock() }
        var agent = try registeredAgent(id)
        try change(&agent)
        guard agent.id == id else {
            throw EngineError(.invalidAgent, "agent \(id) cannot be renamed to \(agent.id); register a new agent instead")
        }
        return try await updateHoldingLock(agent, actor: actor)
    }

    /// Enables or disables registered agent `id`: disabled, it holds no grant (revoked in the
    /// same commit) and every check for it is denied.
    public func setAgentActive(_ id: String, active: Bool, actor: Actor) async throws -> AgentOutcome {
        try await updateAgent(id, actor: actor) { $0.active = active }
    }

    /// Adds and removes sponsors of registered agent `id` (`tether agents sponsors`); the
    /// result must still meet `agents.minSponsors`.
    public func changeSponsors(of id: String, adding: [String], removing: [String], actor: Actor) async throws -> AgentOutcome {
        try await updateAgent(id, actor: actor) { agent in
            let unknown = removing.filter { !agent.sponsors.contains($0) }
            guard unknown.isEmpty else {
                throw EngineError(
                    .invalidAgent,
                    "\(unknown.joined(separator: ", ")) \(unknown.count == 1 ? "is" : "are") not a sponsor of agent \(id); "
                        + "its sponsors: \(agent.sponsors.joined(separator: ", "))")
            }
            let kept = agent.sponsors.filter { !removing.contains($0) }
            agent.sponsors = kept + adding.filter { !kept.contains($0) }
        }
    }

    /// Deletes registered agent `id` and revokes every grant it holds, in one commit audited
    /// `agent.deleted`; its recorded state goes with it.
    public func deleteAgent(_ id: String, actor: Actor) async throws -> AgentOutcome {
        try await lock()
        defer { gate.unlock() }
        let existing = try registeredAgent(id)
        return try await commitRegistry(
            .agentDeleted, agent: existing, next: (registered ?? []).filter { $0.id != id }, sponsorsChanged: false,
            actor: actor, retired: "was deleted")
    }

    // MARK: - helpers

    /// The configured agents, then the registered ones a configured agent does not shadow.
    /// Takes the gate only to read the registry the first time: listing never waits for a
    /// reconciliation.
    private func effectiveAgents() async throws -> [Agent] {
        if registered == nil {
            try await lock()
            gate.unlock()
        }
        let configured = configuration.policySet.agents
        let ids = Set(configured.map(\.id))
        return configured + (registered ?? []).filter { !ids.contains($0.id) }
    }

    private static func listing(_ agent: Agent, state: AgentState?, reads: any DecisionReads) throws -> AgentListing {
        let sponsors = Sponsorship.effectiveSponsors(of: agent, state: state)
        let active = try sponsors.filter { try reads.identity(userName: $0)?.status == .active }
        return AgentListing(agent: agent, state: state, sponsors: sponsors, activeSponsors: active)
    }

    private static func validate(_ agent: Agent) throws {
        let problems = AgentRegistration.problems(of: agent)
        guard problems.isEmpty else { throw EngineError(.invalidAgent, problems.joined(separator: "; ")) }
    }

    private var configurationFileName: String { configuration.configurationFile ?? "the configuration file" }

    /// Registered agent `id`, the gate held; a configured agent is refused with the file to edit.
    private func registeredAgent(_ id: String) throws -> Agent {
        if configuration.policySet.agent(id) != nil {
            throw EngineError(
                .configuredAgent,
                "agent \(id) is declared in \(configurationFileName), which alone changes it: edit it there and reload "
                    + "(tether reload)")
        }
        guard let agent = registered?.first(where: { $0.id == id }) else {
            throw EngineError(.unknownAgent, "no agent \(id) is registered")
        }
        return agent
    }

    /// Puts `next` in force as the registry, decides the change to `agent` under it and
    /// commits it; on any failure the registry in force stays as it was.
    private func commitRegistry(
        _ action: AuditAction, agent: Agent, next: [Agent], sponsorsChanged: Bool, enabled: Bool = false, actor: Actor,
        retired: String? = nil
    ) async throws -> AgentOutcome {
        let previous = registered
        registered = next
        do {
            var retiring = decider
            if let retired { retiring.retiredAgents[agent.id] = retired }
            let (decider, now) = (retiring, clock.now())
            let decision = try await store.inspect { reads in
                try decider.agentChange(
                    action, agent: agent, sponsorsChanged: sponsorsChanged, enabled: enabled, actor: actor, now: now, reads: reads)
            }
            var outcome = decision.outcome
            if let changeset = decision.changeset {
                outcome.revision = try await commit(changeset).auditSeqs?.upperBound
            }
            index.setAgents(policySet.agents, disabled: disabledAgents)
            return outcome
        } catch {
            registered = previous
            throw error
        }
    }
}
