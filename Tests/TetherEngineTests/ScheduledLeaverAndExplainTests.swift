import Foundation
import Testing
import TetherCore
import TetherEngine
import TetherStore

@Suite struct ScheduledLeaverTests {
    @Test func aFutureLeaverIsStoredAndAppliedAtItsTimeEvenAfterARestart() async throws {
        let world = try World()
        try await world.seedSponsors()
        _ = try await world.engine.submit(Events.ldapEvent(Events.ldap(
            "alice", version: 2, groups: ["support"], department: "Support", employeeNumber: "1001")))
        let effective = world.clock.now().addingTimeInterval(3_600)
        let scheduled = try await world.engine.submit(Events.hr("evt-1", .leaver, employeeNumber: "1001", at: 1, effectiveAt: effective))
        #expect(scheduled.status == .scheduled)
        #expect(try await world.engine.applyDueLeavers().isEmpty)
        #expect(try await world.identity("alice")?.status == .active)

        // The daemon restarts: a new engine over the same file still knows the leaver.
        let restarted = Engine(store: world.store, configuration: await world.engine.configuration, clock: world.clock)
        world.clock.advance(by: 3_599)
        #expect(try await restarted.applyDueLeavers().isEmpty)
        world.clock.advance(by: 1)
        let applied = try await restarted.applyDueLeavers()
        #expect(applied.map(\.status) == [.applied])
        #expect(applied.first?.revoked == 2)
        #expect(try await world.identity("alice")?.status == .terminated)
        #expect(try await world.store.eventStatus(id: "evt-1") == .applied)
        #expect(try await restarted.applyDueLeavers().isEmpty)
        let terminated = try await world.store.auditRecords(AuditQuery(subject: "alice")).last { $0.action == "identity.terminated" }
        #expect(terminated?["actor"] == "scheduler")
        // A replay of the same webhook after the fact is a duplicate.
        #expect(try await restarted.submit(Events.hr("evt-1", .leaver, employeeNumber: "1001", at: 1, effectiveAt: effective)).status == .duplicate)
    }
}

@Suite struct ExplainTests {
    @Test func explainsAnAllowedRequestWithItsLineage() async throws {
        let world = try World()
        try await world.seedSponsors()
        _ = try await world.engine.submit(Events.ldapEvent(Events.ldap("alice", version: 2, groups: ["support"], department: "Support")))
        let explanation = try await world.engine.explain(CheckRequest(
            subject: "alice", agent: "support-copilot", scope: "tickets:write", resource: "zendesk:queue/Support"))
        #expect(explanation.decision.allowed)
        #expect(explanation.decision.policy == "support-tickets")
        let lineage = try #require(explanation.grant?.justified.lineage)
        #expect(lineage.facts == ["memberOf support", "department=Support"])
        #expect(lineage.policySet == Fixtures.policySet.hash)
        #expect(lineage.events["ldap"] == "ldap:uuid-alice:2026-11-28T10:00:02.000000Z")
        #expect(lineage.versions["ldap"] == "2026-11-28T10:00:02.000000Z")
        #expect(explanation.grant?.auditSeq == explanation.audit.first?.seq)
        #expect(explanation.audit.map(\.action) == ["grant.granted"])
    }

    @Test func explainsEachReasonForADenial() async throws {
        let world = try World()
        try await world.seedSponsors()
        _ = try await world.engine.submit(Events.ldapEvent(Events.ldap("alice", version: 2, groups: ["support"], department: "Support")))
        func reason(_ subject: String, _ agent: String = "support-copilot", _ resource: String = "zendesk:queue/Support") async throws -> String {
            let explanation = try await world.engine.explain(CheckRequest(subject: subject, agent: agent, scope: "tickets:read", resource: resource))
            #expect(!explanation.decision.allowed)
            return explanation.decision.reason
        }
        #expect(try await reason("alice", "support-copilot", "zendesk:queue/Legal") == "no grant of tickets:read on zendesk:queue/Legal for alice through support-copilot")
        #expect(try await reason("nobody") == "subject nobody is not a known identity")
        #expect(try await reason("alice", "ghost") == "agent ghost is not configured or registered")
        _ = try await world.engine.submit(Events.ldapEvent(Events.ldap("jdoe", version: 2, department: "Support", status: .terminated)))
        #expect(try await reason("alice") == "agent support-copilot quarantined: sponsor jdoe terminated")
        _ = try await world.engine.submit(Events.ldapEvent(Events.ldap("alice", version: 3, groups: ["support"], department: "Support", status: .terminated)))
        _ = try await world.engine.submit(Events.ldapEvent(Events.ldap("jdoe", version: 3, department: "Support")))
        #expect(try await reason("alice") == "identity alice terminated")
    }

    @Test func aResourceEndingInStarMatchesByPrefix() async throws {
        let world = try World()
        try await world.seedSponsors()
        let explanation = try await world.engine.explain(CheckRequest(
            subject: "agent:ledger-bot", agent: "ledger-bot", scope: "ledger:read", resource: "erp:ledger/2026/q4"))
        #expect(explanation.decision.allowed)
        #expect(explanation.decision.policy == "agent:ledger-bot")
    }
}
