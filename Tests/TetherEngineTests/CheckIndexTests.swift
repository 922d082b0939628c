import Foundation
import Testing
import TetherCore
import TetherEngine
import TetherStore

@Suite struct CheckIndexTests {
    static let request = CheckRequest(subject: "alice", agent: "support-copilot", scope: "tickets:read", resource: "zendesk:queue/Support")

    @Test func theIndexFollowsEveryCommitBeforeTheCallerHearsBack() async throws {
        let world = try World()
        try await world.engine.loadIndex()
        try await world.seedSponsors()
        _ = try await world.engine.submit(Events.ldapEvent(Events.ldap(
            "alice", version: 2, groups: ["support"], department: "Support", employeeNumber: "1001")))
        let allowed = world.engine.index.decide(Self.request)
        #expect(allowed.allowed)
        #expect(allowed.grant == Grant(subject: "alice", agent: "support-copilot", scope: "tickets:read", resource: "zendesk:queue/Support").id)

        _ = try await world.engine.submit(Events.hr("evt-1", .leaver, employeeNumber: "1001", at: 10))
        let denied = world.engine.index.decide(Self.request)
        #expect(!denied.allowed)
        #expect(denied.reason == "identity alice terminated")
    }

    @Test func aReloadedIndexAgreesWithTheOneKeptInStep() async throws {
        let world = try World()
        try await world.engine.loadIndex()
        try await world.seedSponsors()
        for user in ["alice", "bob"] {
            _ = try await world.engine.submit(Events.ldapEvent(Events.ldap(user, version: 2, groups: ["support"], department: "Support")))
        }
        _ = try await world.engine.submit(Events.ldapEvent(Events.ldap("bob", version: 3, department: "Support")))
        _ = try await world.engine.submit(Events.ldapEvent(Events.ldap("jdoe", version: 3, department: "Support", status: .suspended)))

        let fresh = CheckIndex()
        try await fresh.load(from: world.store, agents: Fixtures.policySet.agents)
        #expect(fresh.count == world.engine.index.count)
        // The safety gates take the store's grant count from the index kept in step.
        #expect(world.engine.index.count == (try await world.store.grantCount()))
        #expect(world.engine.index.count > 0)
        for subject in ["alice", "bob", "agent:ledger-bot", "mkhan"] {
            for agent in ["support-copilot", "ledger-bot", "hr-assistant"] {
                let request = CheckRequest(subject: subject, agent: agent, scope: "tickets:read", resource: "zendesk:queue/Support")
                #expect(fresh.decide(request) == world.engine.index.decide(request))
            }
        }
        #expect(fresh.decide(Self.request).reason == "agent support-copilot quarantined: sponsor jdoe suspended")
    }
}
