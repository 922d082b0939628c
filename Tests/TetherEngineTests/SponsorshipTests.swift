import Foundation
import Testing
import TetherCore
import TetherEngine
import TetherStore

/// Agents keep grants only while their sponsor is active (SPEC §5). Decided by the pure
/// decision step over memory (``DecisionWorld``).
@Suite struct SponsorshipTests {
    @Test func autonomousAgentHoldsItsDeclaredGrantsWhileItsSponsorIsActive() throws {
        let world = DecisionWorld()
        try world.seedSponsors()
        #expect(world.grantLines().contains("agent:ledger-bot ledger-bot ledger:read erp:ledger/*"))

        let suspended = try world.submit(Events.ldapEvent(Events.ldap(
            "mkhan", version: 2, department: "People", title: "HR Partner", status: .suspended, manager: "uuid-boss")))
        #expect(suspended.plan?.transcript.contains(
            "revoke agent:ledger-bot ledger-bot ledger:read erp:ledger/* (agent ledger-bot quarantined: sponsor mkhan suspended)") == true)
        #expect(world.grantLines().filter { $0.hasPrefix("agent:") }.isEmpty)
    }

    @Test func sponsorLeavingQuarantinesTheAgentAndItsReturnReleasesIt() throws {
        let world = DecisionWorld()
        try world.seedSponsors()
        _ = try world.submit(Events.ldapEvent(Events.ldap("alice", version: 2, groups: ["support"], department: "Support")))

        // jdoe sponsors support-copilot: alice's grants through it go when jdoe goes.
        let leaver = try world.submit(Events.ldapEvent(Events.ldap("jdoe", version: 2, department: "Support", status: .terminated)))
        #expect(leaver.plan?.transcript == [
            "quarantine support-copilot sponsor=jdoe (sponsor jdoe terminated)",
            "revoke alice support-copilot tickets:read zendesk:queue/Support (agent support-copilot quarantined: sponsor jdoe terminated)",
            "revoke alice support-copilot tickets:write zendesk:queue/Support (agent support-copilot quarantined: sponsor jdoe terminated)",
        ])
        #expect(world.reads.states["support-copilot"]?.quarantined == true)
        let quarantine = try #require(world.memory.audit.first {
            $0.action == .agentQuarantined && $0.fields["sponsor"] == "jdoe" && $0.fields["reason"] == "sponsor jdoe terminated"
        })
        #expect(quarantine.fields["plan"] == leaver.plan?.id && quarantine.fields["agent"] == "support-copilot")

        // With onSponsorLeave: quarantine, the sponsor's return releases the agent.
        let back = try world.submit(Events.ldapEvent(Events.ldap("jdoe", version: 3, department: "Support")))
        #expect(back.plan?.transcript == [
            "release support-copilot sponsor=jdoe (sponsor jdoe active)",
            "grant alice support-copilot tickets:read zendesk:queue/Support [support-tickets]",
            "grant alice support-copilot tickets:write zendesk:queue/Support [support-tickets]",
        ])
    }

    @Test func agentWhoseSponsorIsUnknownNeverReceivesGrants() throws {
        let world = DecisionWorld()
        _ = try world.submit(Events.ldapEvent(Events.ldap("alice", version: 2, groups: ["support"], department: "Support")))
        try world.reconcile(origin: .other, actor: .policy)
        #expect(world.grantLines().isEmpty)
        #expect(world.reads.states["support-copilot"]?.reason == "sponsor jdoe is not a known identity")
    }
}

/// An operator naming a sponsor: through the engine and SQLite.
@Suite struct SponsorOperatorTests {


    @Test func transferToManagerProposesTheManagerAndWaitsForAnOperator() async throws {
        let world = try World()
        try await world.seedSponsors()
        _ = try await world.engine.submit(Events.ldapEvent(Events.ldap(
            "hana", version: 2, department: "People", title: "HR Generalist")))
        #expect(try await world.grantLines().contains("hana hr-assistant records:read workday:org/People"))

        let leaver = try await world.engine.submit(Events.ldapEvent(Events.ldap(
            "mkhan", version: 2, department: "People", title: "HR Partner", status: .terminated, manager: "uuid-boss")))
        #expect(leaver.plan?.transcript.first == "quarantine hr-assistant sponsor=mkhan proposed=boss (sponsor mkhan terminated)")
        #expect(try await world.grantLines().filter { $0.contains("hr-assistant") }.isEmpty)

        // The old sponsor's return does not lift it: the operator must name a sponsor.
        _ = try await world.engine.submit(Events.hr("evt-rehire", .joiner, employeeNumber: "77", userName: "mkhan", at: 50))
        let state = try await world.store.agentStates()["hr-assistant"]
        #expect(state?.quarantined == true)
        #expect(state?.proposedSponsor == "boss")
        #expect(try await world.grantLines().filter { $0.contains("hr-assistant") }.isEmpty)

        let plan = try await world.engine.sponsor(agent: "hr-assistant", userName: "boss", actor: .operator("root"))
        #expect(plan.transcript == [
            "release hr-assistant sponsor=boss (sponsor boss active)",
            "grant hana hr-assistant records:read workday:org/People [hr-records]",
            "grant mkhan hr-assistant records:read workday:org/People [hr-records]",
        ])
        let sponsored = try await world.store.auditRecords(AuditQuery(agent: "hr-assistant")).filter { $0.action == "agent.sponsored" }
        #expect(sponsored.contains { $0["sponsor"] == "boss" && $0["actor"] == "operator:root" })
    }

    @Test func sponsoringWithAnInactiveIdentityIsRefused() async throws {
        let world = try World()
        try await world.seedSponsors()
        await #expect(throws: EngineError.self) {
            try await world.engine.sponsor(agent: "hr-assistant", userName: "nobody", actor: .operator("root"))
        }
        await #expect(throws: EngineError.self) {
            try await world.engine.sponsor(agent: "no-such-agent", userName: "boss", actor: .operator("root"))
        }
    }

}
