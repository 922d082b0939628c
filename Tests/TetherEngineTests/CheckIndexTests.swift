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

    /// Two records may carry one userName (a person who left and came back as a new record):
    /// the check sees the active one, follows a rename of either, and a reload agrees.
    @Test func recordsSharingAUserNameAreCheckedByTheActiveOneThroughRenames() async throws {
        let world = try World()
        try await world.engine.loadIndex()
        try await world.seedSponsors()
        func reason(_ subject: String) -> String? {
            world.engine.index.decide(CheckRequest(subject: subject, agent: "support-copilot", scope: "none", resource: "none")).reason
        }
        _ = try await world.engine.submit(Events.ldapEvent(Events.ldap("alice", version: 2, department: "Support")))
        _ = try await world.engine.submit(Events.ldapEvent(Events.ldap("alice", version: 3, department: "Support", status: .terminated)))
        #expect(reason("alice") == "identity alice terminated")

        // Back under the same userName with another directory key: a second record.
        _ = try await world.engine.submit(Events.ldapEvent(Events.ldap(
            "alice", version: 4, department: "Support", externalId: "uuid-alice-again")))
        #expect(try await world.store.identities(status: nil).filter { $0.userName == "alice" }.count == 2)
        #expect(reason("alice") == "no grant of none on none for alice through support-copilot")

        // The new record renamed: the name keeps only the ended one.
        var renamed = Events.ldap("alice", version: 5, department: "Support", externalId: "uuid-alice-again")
        renamed.userName = "alice.b"
        _ = try await world.engine.submit(Events.ldapEvent(renamed))
        #expect(reason("alice") == "identity alice terminated")
        #expect(reason("alice.b") == "no grant of none on none for alice.b through support-copilot")

        let fresh = CheckIndex()
        try await fresh.load(from: world.store, agents: Fixtures.policySet.agents)
        for subject in ["alice", "alice.b", "jdoe"] {
            let question = CheckRequest(subject: subject, agent: "support-copilot", scope: "none", resource: "none")
            #expect(fresh.decide(question) == world.engine.index.decide(question))
        }
    }
}
