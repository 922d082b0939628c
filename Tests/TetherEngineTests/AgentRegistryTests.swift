import Foundation
import Testing
import TetherCore
import TetherEngine
import TetherStore

/// Agents registered at runtime and their sponsors (SPEC §15), through the engine and SQLite.
@Suite struct AgentRegistryTests {
    /// A policy naming `triage-bot`, which no configuration declares: it is registered later.
    static let triage = Policy(
        id: "triage", when: .memberOf("support"),
        grant: [GrantTemplate(agent: "triage-bot", scopes: ["tickets:triage"], resource: "zendesk:queue/{department}")])
    static let policySet = PolicySet(agents: Fixtures.policySet.agents, policies: Fixtures.policySet.policies + [triage])
    static let aliceTriage = CheckRequest(
        subject: "alice", agent: "triage-bot", scope: "tickets:triage", resource: "zendesk:queue/Support")

    static func triageBot(sponsors: [String] = ["jdoe", "mkhan"], source: AgentSource = .operator) -> Agent {
        Agent(
            id: "triage-bot", kind: .delegated, sponsors: sponsors, displayName: "Triage bot", description: "Sorts tickets",
            agentType: "assistant", source: source)
    }

    /// A world with the sponsors jdoe, mkhan and boss, and alice in support.
    static func world(minSponsors: Int = 1) async throws -> World {
        let world = try World(policySet: policySet, minSponsors: minSponsors)
        try await world.engine.loadIndex()
        try await world.seedSponsors()
        _ = try await world.engine.submit(Events.ldapEvent(Events.ldap("alice", version: 2, groups: ["support"], department: "Support")))
        return world
    }

    /// The audit actions of the records after `seq`, up to and including `revision`.
    static func actions(_ world: World, after seq: Int, through revision: Int?) async throws -> [String] {
        let records = try await world.store.auditRecords(AuditQuery(afterSeq: seq))
        #expect(records.last?.seq == revision, "the change is the last commit")
        return records.map(\.action)
    }

    // MARK: - the done-when story

    @Test func anAgentKeepsItsGrantsWhileOneOfTwoSponsorsIsActive() async throws {
        let world = try await Self.world()
        _ = try await world.engine.registerAgent(Self.triageBot(), actor: .operator("root"))
        #expect(try await world.grantLines().contains("alice triage-bot tickets:triage zendesk:queue/Support"))

        // The first sponsor leaves: the second still stands for the agent.
        let first = try await world.engine.submit(Events.ldapEvent(Events.ldap("jdoe", version: 2, department: "Support", status: .terminated)))
        #expect(first.plan?.transcript.contains { $0.contains("triage-bot") } == false)
        #expect(try await world.grantLines().contains("alice triage-bot tickets:triage zendesk:queue/Support"))
        #expect(world.engine.index.decide(Self.aliceTriage).allowed)
        #expect(try await world.store.agentStates()["triage-bot"]?.quarantined == false)

        // The second leaves: quarantined, every grant through it revoked in that commit.
        let second = try await world.engine.submit(Events.ldapEvent(Events.ldap(
            "mkhan", version: 2, department: "People", title: "HR Partner", status: .suspended, manager: "uuid-boss")))
        #expect(second.plan?.transcript.contains(
            "quarantine triage-bot sponsor=jdoe,mkhan (no sponsor is active: jdoe terminated, mkhan suspended)") == true)
        #expect(second.plan?.transcript.contains(
            "revoke alice triage-bot tickets:triage zendesk:queue/Support (agent triage-bot quarantined: no sponsor is active: jdoe terminated, mkhan suspended)") == true)
        #expect(try await world.grantLines().filter { $0.contains("triage-bot") }.isEmpty)
        let denied = world.engine.index.decide(Self.aliceTriage)
        #expect(!denied.allowed)
        #expect(denied.reason == "agent triage-bot quarantined: no sponsor is active: jdoe terminated, mkhan suspended")

        // One comes back: released, the grants given again.
        let back = try await world.engine.submit(Events.ldapEvent(Events.ldap(
            "mkhan", version: 3, department: "People", title: "HR Partner", manager: "uuid-boss")))
        #expect(back.plan?.transcript.contains("release triage-bot sponsor=mkhan (sponsor mkhan active)") == true)
        #expect(try await world.grantLines().contains("alice triage-bot tickets:triage zendesk:queue/Support"))
        #expect(world.engine.index.decide(Self.aliceTriage).allowed)
        let listing = try #require(try await world.engine.agent(id: "triage-bot"))
        #expect(listing.status == .active)
        #expect(listing.activeSponsors == ["mkhan"])
    }

    @Test func anOperatorAddingAnActiveSponsorReleasesAQuarantinedAgent() async throws {
        let world = try await Self.world()
        _ = try await world.engine.registerAgent(Self.triageBot(sponsors: ["jdoe"]), actor: .operator("root"))
        _ = try await world.engine.submit(Events.ldapEvent(Events.ldap("jdoe", version: 2, department: "Support", status: .terminated)))
        #expect(try await world.engine.agent(id: "triage-bot")?.status == .quarantined)

        let added = try await world.engine.changeSponsors(of: "triage-bot", adding: ["boss"], removing: [], actor: .operator("root"))
        #expect(added.action == .agentUpdated)
        #expect(added.agent.sponsors == ["jdoe", "boss"])
        #expect(added.plan.transcript.first == "release triage-bot sponsor=boss (sponsor boss active)")
        #expect(try await world.grantLines().contains("alice triage-bot tickets:triage zendesk:queue/Support"))
        #expect(try await world.store.registeredAgents().first?.sponsors == ["jdoe", "boss"])
    }

    @Test func aTransferToManagerQuarantineEndsWhenTheRegistrationNamesAnActiveSponsor() async throws {
        let world = try await Self.world()
        var agent = Self.triageBot(sponsors: ["mkhan"])
        agent.onSponsorLeave = .transferToManager
        _ = try await world.engine.registerAgent(agent, actor: .scim)
        _ = try await world.engine.submit(Events.ldapEvent(Events.ldap(
            "mkhan", version: 2, department: "People", title: "HR Partner", status: .terminated, manager: "uuid-boss")))
        let waiting = try #require(try await world.store.agentStates()["triage-bot"])
        #expect(waiting.awaitsOperator && waiting.proposedSponsor == "boss")

        // A change that leaves the sponsors alone does not lift it.
        let renamed = try await world.engine.updateAgent("triage-bot", actor: .scim) { $0.displayName = "Renamed" }
        #expect(renamed.plan.steps.isEmpty)
        #expect(try await world.store.agentStates()["triage-bot"]?.awaitsOperator == true)

        let named = try await world.engine.changeSponsors(of: "triage-bot", adding: ["boss"], removing: ["mkhan"], actor: .scim)
        #expect(named.plan.transcript.first == "release triage-bot sponsor=boss (sponsor boss active)")
        let state = try #require(try await world.store.agentStates()["triage-bot"])
        #expect(!state.quarantined && !state.awaitsOperator && state.proposedSponsor == nil)
        #expect(try await world.grantLines().contains("alice triage-bot tickets:triage zendesk:queue/Support"))
    }

    @Test func aReloadKeepsTheRegisteredAgentsAndAConfiguredOneOfTheSameIdShadowsThem() async throws {
        let world = try await Self.world()
        _ = try await world.engine.registerAgent(Self.triageBot(), actor: .operator("root"))
        var configuration = await world.engine.configuration
        let reloaded = try await world.engine.reload(configuration, actor: .policy)
        #expect(reloaded.plan.steps.isEmpty, "a reload does not forget the registry")

        // The file now declares triage-bot itself, with a sponsor who is not known: it wins.
        configuration.policySet = PolicySet(
            agents: Self.policySet.agents + [Agent(id: "triage-bot", kind: .delegated, sponsor: "ghost")],
            policies: Self.policySet.policies)
        let shadowed = try await world.engine.reload(configuration, actor: .policy)
        #expect(shadowed.plan.transcript.contains {
            $0.hasPrefix("revoke alice triage-bot tickets:triage zendesk:queue/Support (agent triage-bot quarantined: sponsor ghost")
        })
        #expect(try await world.engine.agents().filter { $0.agent.id == "triage-bot" }.map(\.agent.source) == [.config])
        await #expect(throws: EngineError.self) {
            try await world.engine.deleteAgent("triage-bot", actor: .operator("root"))
        }
    }

    // MARK: - one audited commit per change, the grants following

    @Test func registerUpdateDisableAndDeleteAreEachOneCommitWithTheirGrants() async throws {
        let world = try await Self.world()
        // The policy names an agent nobody registered: it grants nothing, even on a full run.
        try await world.engine.reconcile(origin: .other, actor: .policy)
        #expect(try await world.grantLines().filter { $0.contains("triage-bot") }.isEmpty)
        #expect(!world.engine.index.decide(Self.aliceTriage).allowed)
        #expect(world.engine.index.decide(Self.aliceTriage).reason == "agent triage-bot is not configured or registered")

        var seq = try await world.store.lastAuditSeq()
        let registered = try await world.engine.registerAgent(Self.triageBot(), actor: .operator("root"))
        #expect(try await Self.actions(world, after: seq, through: registered.revision) == ["agent.registered", "grant.granted"])
        #expect(world.engine.index.decide(Self.aliceTriage).allowed)
        let record = try #require(try await world.store.auditRecords(AuditQuery(afterSeq: seq)).first)
        #expect(record["actor"] == "operator:root")
        #expect(record["sponsors"] == "jdoe,mkhan")
        #expect(record["source"] == "operator")
        #expect(registered.agent.createdAt == world.clock.now())

        seq = try await world.store.lastAuditSeq()
        var renamed = registered.agent
        renamed.displayName = "Ticket triage"
        let updated = try await world.engine.updateAgent(renamed, actor: .scim)
        #expect(try await Self.actions(world, after: seq, through: updated.revision) == ["agent.updated"])
        #expect(try await world.store.registeredAgents().first?.displayName == "Ticket triage")
        #expect(updated.agent.source == .operator, "the source stays the one that registered it")

        // Nothing changed: nothing committed.
        let same = try await world.engine.updateAgent(updated.agent, actor: .scim)
        #expect(same.revision == nil)

        seq = try await world.store.lastAuditSeq()
        let disabled = try await world.engine.setAgentActive("triage-bot", active: false, actor: .operator("root"))
        #expect(try await Self.actions(world, after: seq, through: disabled.revision) == ["agent.disabled", "grant.revoked"])
        #expect(disabled.plan.transcript == [
            "revoke alice triage-bot tickets:triage zendesk:queue/Support (agent triage-bot is disabled)"
        ])
        let denied = world.engine.index.decide(Self.aliceTriage)
        #expect(!denied.allowed)
        #expect(denied.reason == "agent triage-bot is disabled")
        #expect(try await world.engine.agent(id: "triage-bot")?.status == .disabled)
        // A full run under the disabled agent gives nothing back.
        let full = try await world.engine.reconcile(origin: .other, actor: .policy)
        #expect(full.plan.steps.isEmpty)

        seq = try await world.store.lastAuditSeq()
        let enabled = try await world.engine.setAgentActive("triage-bot", active: true, actor: .operator("root"))
        #expect(try await Self.actions(world, after: seq, through: enabled.revision) == ["agent.updated", "grant.granted"])
        #expect(world.engine.index.decide(Self.aliceTriage).allowed)

        seq = try await world.store.lastAuditSeq()
        let deleted = try await world.engine.deleteAgent("triage-bot", actor: .scim)
        #expect(try await Self.actions(world, after: seq, through: deleted.revision) == ["agent.deleted", "grant.revoked"])
        #expect(deleted.plan.transcript == [
            "revoke alice triage-bot tickets:triage zendesk:queue/Support (agent triage-bot was deleted)"
        ])
        #expect(try await world.store.registeredAgents().isEmpty)
        #expect(try await world.store.agentStates()["triage-bot"] == nil)
        #expect(!world.engine.index.decide(Self.aliceTriage).allowed)
        #expect(try await world.engine.agent(id: "triage-bot") == nil)
    }

    @Test func anAutonomousRegisteredAgentHoldsItsDeclaredGrants() async throws {
        let world = try await Self.world()
        let bot = Agent(
            id: "payroll-bot", kind: .autonomous, sponsors: ["mkhan"],
            grants: [StaticGrant(scopes: ["payroll:read"], resource: "workday:payroll")], source: .scim)
        let outcome = try await world.engine.registerAgent(bot, actor: .scim)
        #expect(outcome.plan.transcript == ["grant agent:payroll-bot payroll-bot payroll:read workday:payroll [agent:payroll-bot]"])
        #expect(world.engine.index.decide(CheckRequest(
            subject: "agent:payroll-bot", agent: "payroll-bot", scope: "payroll:read", resource: "workday:payroll")).allowed)
    }

    // MARK: - refusals

    @Test func configuredAgentsAreReadOnlyHere() async throws {
        let world = try await Self.world()
        await #expect(throws: EngineError(
            .configuredAgent,
            "agent support-copilot is declared in /etc/tether/tether.yaml, which alone changes it: edit it there and reload (tether reload)"
        )) {
            try await world.engine.setAgentActive("support-copilot", active: false, actor: .operator("root"))
        }
        await #expect(throws: EngineError.self) {
            try await world.engine.deleteAgent("support-copilot", actor: .scim)
        }
        await #expect(throws: EngineError.self) {
            try await world.engine.changeSponsors(of: "ledger-bot", adding: ["boss"], removing: [], actor: .operator("root"))
        }
        var clash = Self.triageBot()
        clash.id = "support-copilot"
        await #expect(throws: EngineError(
            .agentExists, "agent support-copilot is declared in /etc/tether/tether.yaml; choose another id"
        )) {
            try await world.engine.registerAgent(clash, actor: .operator("root"))
        }
        _ = try await world.engine.registerAgent(Self.triageBot(), actor: .operator("root"))
        await #expect(throws: EngineError(.agentExists, "agent triage-bot is already registered; update it instead")) {
            try await world.engine.registerAgent(Self.triageBot(), actor: .operator("root"))
        }
        await #expect(throws: EngineError(.unknownAgent, "no agent ghost-bot is registered")) {
            try await world.engine.deleteAgent("ghost-bot", actor: .scim)
        }
        #expect(try await world.engine.agents().map(\.agent.id) == ["support-copilot", "ledger-bot", "hr-assistant", "triage-bot"])
    }

    @Test func invalidRegistrationsAreRefusedWithWhatIsWrong() async throws {
        let world = try await Self.world()
        let before = try await world.store.lastAuditSeq()
        let cases: [(Agent, String)] = [
            (Agent(id: "bad id", kind: .delegated, sponsors: ["jdoe"], source: .operator),
             "agent id 'bad id' is not valid; use letters, digits, '.', '_', ':' and '-', starting with a letter or digit"),
            (Agent(id: "lonely", kind: .delegated, sponsors: [], source: .operator),
             "agent lonely names no sponsor; name at least one accountable person's userName"),
            (Agent(id: "twice", kind: .delegated, sponsors: ["jdoe", "jdoe"], source: .operator),
             "sponsor jdoe is named twice for agent twice"),
            (Agent(
                id: "greedy", kind: .delegated, sponsors: ["jdoe"],
                grants: [StaticGrant(scopes: ["x:read"], resource: "erp:x")], source: .operator),
             "grants are only for autonomous agents; delegated agent greedy receives its grants from policies"),
        ]
        for (agent, message) in cases {
            await #expect(throws: EngineError(.invalidAgent, message)) {
                try await world.engine.registerAgent(agent, actor: .operator("root"))
            }
        }
        #expect(try await world.store.lastAuditSeq() == before, "nothing committed")
        #expect(try await world.store.registeredAgents().isEmpty)
    }

    @Test func registeringOrUpdatingBelowMinSponsorsIsRefused() async throws {
        let world = try await Self.world(minSponsors: 2)
        await #expect(throws: EngineError(
            .tooFewSponsors,
            "agent triage-bot needs at least 2 sponsors that are active identities (agents.minSponsors); "
                + "1 of 2 named is (ghost is not a known identity)"
        )) {
            try await world.engine.registerAgent(Self.triageBot(sponsors: ["jdoe", "ghost"]), actor: .operator("root"))
        }
        #expect(try await world.store.registeredAgents().isEmpty)

        _ = try await world.engine.registerAgent(Self.triageBot(), actor: .operator("root"))
        await #expect(throws: EngineError.self) {
            try await world.engine.changeSponsors(of: "triage-bot", adding: [], removing: ["mkhan"], actor: .operator("root"))
        }
        #expect(try await world.store.registeredAgents().first?.sponsors == ["jdoe", "mkhan"])
        // Renaming and disabling are never refused for want of sponsors; enabling again is.
        _ = try await world.engine.submit(Events.ldapEvent(Events.ldap("jdoe", version: 2, department: "Support", status: .terminated)))
        let renamed = try await world.engine.updateAgent("triage-bot", actor: .operator("root")) { $0.displayName = "Renamed" }
        #expect(renamed.action == .agentUpdated && renamed.revision != nil)
        let disabled = try await world.engine.setAgentActive("triage-bot", active: false, actor: .operator("root"))
        #expect(disabled.action == .agentDisabled)
        await #expect(throws: EngineError(
            .tooFewSponsors,
            "agent triage-bot needs at least 2 sponsors that are active identities (agents.minSponsors); "
                + "1 of 2 named is (jdoe terminated)"
        )) {
            try await world.engine.setAgentActive("triage-bot", active: true, actor: .operator("root"))
        }
    }

    @Test func aRegistrationTheStoreCannotCommitLeavesNothingInForce() async throws {
        let world = try await Self.world()
        // A full disk: the commit (two thousand grants, more than the file's free pages hold)
        // fails and rolls back; the registry in force must too.
        let bot = Agent(
            id: "bulk-bot", kind: .autonomous, sponsors: ["jdoe"],
            grants: [StaticGrant(scopes: (0..<2_000).map { "scope:\($0)" }, resource: "erp:ledger/*")], source: .operator)
        let request = CheckRequest(subject: "agent:bulk-bot", agent: "bulk-bot", scope: "scope:1", resource: "erp:ledger/x")
        try await world.store.capSize(extraPages: 0)
        await #expect(throws: StoreError.self) {
            try await world.engine.registerAgent(bot, actor: .operator("root"))
        }
        try await world.store.capSize(extraPages: nil)
        #expect(try await world.engine.agent(id: "bulk-bot") == nil)
        #expect(try await world.store.registeredAgents().isEmpty)
        #expect(world.engine.index.decide(request).reason == "agent bulk-bot is not configured or registered")
        // The next full run under the registry in force grants nothing through it.
        let run = try await world.engine.reconcile(origin: .other, actor: .policy)
        #expect(run.plan.steps.isEmpty)
        // And it can be registered once the store takes writes again.
        let registered = try await world.engine.registerAgent(bot, actor: .operator("root"))
        #expect(registered.plan.grants == 2_000)
        #expect(world.engine.index.decide(request).allowed)
    }

    // MARK: - restarts

    @Test func registeredAgentsSurviveARestart() async throws {
        let world = try await Self.world()
        _ = try await world.engine.registerAgent(Self.triageBot(), actor: .operator("root"))
        _ = try await world.engine.registerAgent(
            Agent(id: "old-bot", kind: .delegated, sponsors: ["jdoe"], source: .scim), actor: .scim)
        _ = try await world.engine.setAgentActive("old-bot", active: false, actor: .scim)

        let restarted = Engine(store: world.store, configuration: await world.engine.configuration, clock: world.clock)
        try await restarted.loadIndex()
        #expect(restarted.index.decide(Self.aliceTriage).allowed)
        #expect(restarted.index.decide(CheckRequest(subject: "alice", agent: "old-bot", scope: "x", resource: "y")).reason
            == "agent old-bot is disabled")
        // A full run after the restart keeps the registered agent's grants.
        let run = try await restarted.reconcile(origin: .other, actor: .policy)
        #expect(run.plan.steps.isEmpty)
        #expect(try await restarted.agents().map(\.agent.id).suffix(2) == ["triage-bot", "old-bot"])
    }

    @Test func aRestartedEngineReadsTheRegistryBeforeItsFirstDecision() async throws {
        let world = try await Self.world()
        _ = try await world.engine.registerAgent(Self.triageBot(), actor: .operator("root"))
        // No loadIndex: the first decision must still see the registered agent.
        let restarted = Engine(store: world.store, configuration: await world.engine.configuration, clock: world.clock)
        let run = try await restarted.reconcile(origin: .other, actor: .policy)
        #expect(run.plan.steps.isEmpty)
        #expect(try await world.grantLines().contains("alice triage-bot tickets:triage zendesk:queue/Support"))
    }
}
