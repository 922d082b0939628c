import Foundation
import Testing
import TetherCore
import TetherStore

/// The agent registry (SPEC §15) as every backend keeps it: whole agents, in the order
/// registered, changed and deleted in the commit that audits the change.
@Suite struct AgentRegistryStoreTests {
    static func agent(_ id: String, sponsors: [String] = ["jdoe", "mkhan"], source: AgentSource = .scim) -> Agent {
        Agent(
            id: id, kind: .autonomous, sponsors: sponsors, onSponsorLeave: .transferToManager,
            grants: [StaticGrant(scopes: ["ledger:read"], resource: "erp:ledger/*")], displayName: "Ledger \(id)",
            description: "Reads the ledger", agentType: "workflow", active: true, source: source,
            createdAt: Sample.time, updatedAt: Sample.time)
    }

    @Test(arguments: Backend.allCases)
    func registeredAgentsRoundTripInTheOrderRegistered(_ backend: Backend) async throws {
        let store = try await backend.make()
        var changeset = Changeset(time: Sample.time)
        changeset.registeredAgents = [Self.agent("b-bot"), Self.agent("a-bot", source: .operator)]
        changeset.agentStates = [AgentState(agent: "b-bot", quarantined: false)]
        changeset.audit = [AuditEntry(action: .agentRegistered, actor: .scim, time: Sample.time, fields: ["agent": "b-bot"])]
        try await store.commit(changeset)
        #expect(try await store.registeredAgents() == [Self.agent("b-bot"), Self.agent("a-bot", source: .operator)])

        // An update replaces the whole agent and keeps its place.
        var update = Changeset(time: Sample.time)
        var disabled = Self.agent("b-bot", sponsors: ["jdoe"])
        disabled.active = false
        disabled.displayName = nil
        update.registeredAgents = [disabled]
        try await store.commit(update)
        #expect(try await store.registeredAgents() == [disabled, Self.agent("a-bot", source: .operator)])
        #expect(try await store.inspect { try $0.registeredAgents() }.map(\.id) == ["b-bot", "a-bot"])
    }

    @Test(arguments: Backend.allCases)
    func aDeletedAgentLeavesWithItsStateAndARefusedCommitDeletesNothing(_ backend: Backend) async throws {
        let store = try await backend.make()
        var changeset = Changeset(time: Sample.time)
        changeset.registeredAgents = [Self.agent("a-bot")]
        changeset.agentStates = [AgentState(agent: "a-bot", sponsorOverride: "boss", quarantined: true, reason: "x")]
        try await store.commit(changeset)

        var delete = Changeset(time: Sample.time)
        delete.deletedAgents = ["a-bot"]
        await #expect(throws: StoreError.self) { try await store.commit(CommitConformanceTests.conflicting, with: [delete]) }
        #expect(try await store.registeredAgents().map(\.id) == ["a-bot"])
        #expect(try await store.agentStates()["a-bot"]?.sponsorOverride == "boss")

        try await store.commit(delete)
        #expect(try await store.registeredAgents().isEmpty)
        #expect(try await store.agentStates()["a-bot"] == nil)
    }
}
