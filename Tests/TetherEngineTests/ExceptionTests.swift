import Foundation
import Testing
import TetherCore
import TetherEngine
import TetherStore

/// Operators' exceptions to policy (SPEC §17), through a real engine over SQLite.
@Suite struct ExceptionTests {
    static let operatorActor = Actor("operator:root")
    static let week: TimeInterval = 7 * 86_400

    /// A world with the sponsors, alice in support (two policy grants) and bob in Legal (none).
    static func world() async throws -> World {
        let world = try World()
        try await world.seedSponsors()
        _ = try await world.engine.submit(Events.ldapEvent(Events.ldap(
            "alice", version: 2, groups: ["support"], department: "Support", employeeNumber: "1001")))
        _ = try await world.engine.submit(Events.ldapEvent(Events.ldap("bob", version: 2, department: "Legal", employeeNumber: "1002")))
        try await world.engine.loadIndex()
        return world
    }

    static func request(
        _ effect: AccessException.Effect, _ subject: String, _ scope: String, _ resource: String,
        agent: String = "support-copilot", until: ExceptionRequest.End? = .after(week), reason: String = "incident INC-42"
    ) -> ExceptionRequest {
        ExceptionRequest(effect: effect, subject: subject, agent: agent, scope: scope, resource: resource, until: until, reason: reason)
    }

    static func applied(_ outcome: ExceptionOutcome) throws -> (AccessException, Plan) {
        guard case .applied(let exception, let plan) = outcome else {
            Issue.record("expected the exception to apply, got \(outcome)")
            throw CancellationError()
        }
        return (exception, plan)
    }

    static func check(_ world: World, _ subject: String, _ scope: String, _ resource: String) -> CheckDecision {
        world.engine.index.decide(CheckRequest(subject: subject, agent: "support-copilot", scope: scope, resource: resource))
    }

    @Test func aGrantExceptionGivesAGrantNoPolicyGivesWithItsApproverInTheLineageAndTheChain() async throws {
        let world = try await Self.world()
        #expect(!Self.check(world, "bob", "tickets:read", "zendesk:queue/Legal").allowed)

        let (exception, plan) = try Self.applied(try await world.engine.addException(
            Self.request(.grant, "bob", "tickets:read", "zendesk:queue/Legal"), actor: Self.operatorActor))
        #expect(exception.id.hasPrefix("x_"))
        #expect(exception.approver == "operator:root")
        #expect(exception.until == world.clock.now().addingTimeInterval(Self.week))
        #expect(plan.grants == 1 && plan.revocations == 0)

        let decision = Self.check(world, "bob", "tickets:read", "zendesk:queue/Legal")
        #expect(decision.allowed)
        #expect(decision.reason == "granted by exception \(exception.id)")
        let stored = try #require(try await world.store.grants(subject: "bob", agent: nil).first)
        #expect(stored.justified.lineage.policy == "exception:\(exception.id)")
        let records = try await world.store.auditRecords(AuditQuery(subject: "bob"))
        #expect(records.suffix(2).map(\.action) == ["exception.added", "grant.granted"])
        #expect(records.suffix(2).first?["approver"] == "operator:root")
        #expect(records.suffix(2).first?["until"] == Timestamp.string(exception.until!))

        let explanation = try await world.engine.explain(CheckRequest(
            subject: "bob", agent: "support-copilot", scope: "tickets:read", resource: "zendesk:queue/Legal"))
        #expect(explanation.exception?.id == exception.id)
        #expect(explanation.exception?.reason == "incident INC-42")

        // A full reconciliation keeps it: the exception derives it as policy would.
        let full = try await world.engine.reconcile(origin: .other, actor: .policy)
        #expect(full.plan.isEmpty)
        #expect(try await world.store.exceptions().map(\.id) == [exception.id])
    }

    @Test func aDenyBeatsPolicyAndAGrantExceptionAndEndingItGivesPolicyBack() async throws {
        let world = try await Self.world()
        #expect(Self.check(world, "alice", "tickets:write", "zendesk:queue/Support").allowed)

        let (deny, plan) = try Self.applied(try await world.engine.addException(
            Self.request(.deny, "alice", "tickets:write", "zendesk:queue/*", until: nil, reason: "under investigation"),
            actor: Self.operatorActor))
        #expect(plan.revocations == 1 && plan.grants == 0)
        let revoked = try #require(try await world.store.auditRecords(AuditQuery(subject: "alice")).last)
        #expect(revoked.action == "grant.revoked")
        #expect(revoked["reason"] == "denied by exception \(deny.id) (operator:root): under investigation")
        let refused = Self.check(world, "alice", "tickets:write", "zendesk:queue/Support")
        #expect(!refused.allowed)
        #expect(refused.exception == deny.id)
        #expect(Self.check(world, "alice", "tickets:read", "zendesk:queue/Support").allowed)

        // A grant exception does not get past a deny, and a full reconciliation keeps both.
        _ = try Self.applied(try await world.engine.addException(
            Self.request(.grant, "alice", "tickets:write", "zendesk:queue/Escalations"), actor: Self.operatorActor))
        #expect(!Self.check(world, "alice", "tickets:write", "zendesk:queue/Escalations").allowed)
        #expect(try await world.engine.reconcile(origin: .other, actor: .policy).plan.isEmpty)
        #expect(try await world.grantLines().filter { $0.hasPrefix("alice ") } == ["alice support-copilot tickets:read zendesk:queue/Support"])

        // Ending the deny gives back what policy and the grant exception give.
        let (_, restored) = try Self.applied(try await world.engine.removeException(id: deny.id, actor: Self.operatorActor))
        #expect(restored.grants == 2)
        #expect(Self.check(world, "alice", "tickets:write", "zendesk:queue/Support").allowed)
        #expect(Self.check(world, "alice", "tickets:write", "zendesk:queue/Escalations").allowed)
        #expect(try await world.auditActions().contains("exception.removed"))
        guard case .notFound = try await world.engine.removeException(id: deny.id, actor: Self.operatorActor) else {
            Issue.record("a removed exception is not found again")
            return
        }
    }

    @Test func aDenyNarrowerThanAGrantLeavesTheGrantAndRefusesOnlyWhatItCovers() async throws {
        let world = try World()
        try await world.seedSponsors()
        try await world.engine.loadIndex()
        // The autonomous ledger-bot holds ledger:read on erp:ledger/*.
        let request = ExceptionRequest(
            effect: .deny, subject: "agent:ledger-bot", agent: "ledger-bot", scope: "ledger:read", resource: "erp:ledger/2026/*",
            until: nil, reason: "audit freeze")
        guard case .refused(let why) = try await world.engine.addException(request, actor: Self.operatorActor) else {
            Issue.record("an exception for an autonomous agent's own grants is refused")
            return
        }
        #expect(why.contains("exceptions are for people"))

        _ = try await world.engine.submit(Events.ldapEvent(Events.ldap("carol", version: 2, department: "Legal")))
        _ = try Self.applied(try await world.engine.addException(
            Self.request(.grant, "carol", "tickets:read", "zendesk:queue/*"), actor: Self.operatorActor))
        let (deny, plan) = try Self.applied(try await world.engine.addException(
            Self.request(.deny, "carol", "tickets:read", "zendesk:queue/Legal", until: nil), actor: Self.operatorActor))
        #expect(plan.isEmpty)
        #expect(try await world.grantLines().contains("carol support-copilot tickets:read zendesk:queue/*"))
        #expect(Self.check(world, "carol", "tickets:read", "zendesk:queue/Sales").allowed)
        let refused = Self.check(world, "carol", "tickets:read", "zendesk:queue/Legal")
        #expect(!refused.allowed && refused.exception == deny.id)
        let explanation = try await world.engine.explain(CheckRequest(
            subject: "carol", agent: "support-copilot", scope: "tickets:read", resource: "zendesk:queue/Legal"))
        #expect(!explanation.decision.allowed)
        #expect(explanation.exception?.id == deny.id)
    }

    @Test func exceptionsExpireOnTheClockAcrossARestart() async throws {
        let world = try await Self.world()
        let (granted, _) = try Self.applied(try await world.engine.addException(
            Self.request(.grant, "bob", "tickets:read", "zendesk:queue/Legal", until: .after(3_600)), actor: Self.operatorActor))
        let (denied, _) = try Self.applied(try await world.engine.addException(
            Self.request(.deny, "alice", "tickets:read", "zendesk:queue/Support", until: .after(7_200)), actor: Self.operatorActor))
        #expect(try await world.engine.expireDueExceptions().isEmpty)

        // The daemon restarts: a new engine over the same file, its index loaded from it.
        let restarted = Engine(store: world.store, configuration: await world.engine.configuration, clock: world.clock)
        try await restarted.loadIndex()
        let check = { (subject: String, resource: String) in
            restarted.index.decide(CheckRequest(subject: subject, agent: "support-copilot", scope: "tickets:read", resource: resource))
        }
        #expect(check("bob", "zendesk:queue/Legal").allowed)
        #expect(!check("alice", "zendesk:queue/Support").allowed)

        world.clock.advance(by: 3_599)
        #expect(try await restarted.expireDueExceptions().isEmpty)
        world.clock.advance(by: 1)
        #expect(try await restarted.expireDueExceptions().map(\.id) == [granted.id])
        #expect(!check("bob", "zendesk:queue/Legal").allowed)
        let bob = try await world.store.auditRecords(AuditQuery(subject: "bob")).suffix(2)
        #expect(bob.map(\.action) == ["exception.expired", "grant.expired"])
        #expect(bob.allSatisfy { $0["actor"] == "scheduler" })
        #expect(bob.last?["reason"] == "exception \(granted.id) expired")

        world.clock.advance(by: 3_600)
        #expect(try await restarted.expireDueExceptions().map(\.id) == [denied.id])
        #expect(check("alice", "zendesk:queue/Support").allowed)
        #expect(try await world.store.exceptions().isEmpty)
        #expect(try await restarted.expireDueExceptions().isEmpty)
        #expect(try await world.store.verifyAuditChain() == .intact(records: try await world.store.auditRecords(AuditQuery()).count))
    }

    @Test func aLeaverLosesExceptionGrantsAndAQuarantinedAgentGetsNone() async throws {
        let world = try await Self.world()
        _ = try Self.applied(try await world.engine.addException(
            Self.request(.grant, "bob", "tickets:read", "zendesk:queue/Legal"), actor: Self.operatorActor))
        _ = try Self.applied(try await world.engine.addException(
            Self.request(.grant, "alice", "tickets:read", "zendesk:queue/Legal"), actor: Self.operatorActor))

        // Bob leaves: the exception's grant goes with his others, in the leaver's commit.
        let leaver = try await world.engine.submit(Events.hr("evt-bob", .leaver, employeeNumber: "1002", at: 3))
        #expect(leaver.revoked == 1)
        #expect(!Self.check(world, "bob", "tickets:read", "zendesk:queue/Legal").allowed)
        #expect(try await world.grantLines().filter { $0.hasPrefix("bob ") }.isEmpty)

        // The agent's sponsor leaves: the agent is quarantined and holds nothing, exception or not.
        _ = try await world.engine.submit(Events.ldapEvent(Events.ldap("jdoe", version: 3, department: "Support", status: .terminated)))
        #expect(try await world.grantLines().filter { $0.contains("support-copilot") }.isEmpty)
        #expect(try await world.engine.reconcile(origin: .other, actor: .policy).plan.isEmpty)
        // The sponsor comes back: the exception's grant returns with policy's.
        _ = try await world.engine.submit(Events.ldapEvent(Events.ldap("jdoe", version: 4, department: "Support")))
        #expect(try await world.grantLines().contains("alice support-copilot tickets:read zendesk:queue/Legal"))
    }

    @Test func requestsThatCannotStandAreRefusedAndRecordNothing() async throws {
        let world = try await Self.world()
        let before = try await world.auditActions().count
        let cases: [(ExceptionRequest, String)] = [
            (Self.request(.grant, "bob", "tickets:read", "zendesk:queue/Legal", until: nil), "needs --until"),
            (Self.request(.grant, "bob", "tickets:read", "zendesk:queue/Legal", until: .after(91 * 86_400)), "exceptions.maxDuration (90d)"),
            (Self.request(.deny, "bob", "tickets:read", "zendesk:queue/Legal", until: .after(-1)), "is not in the future"),
            (Self.request(.grant, "nobody", "tickets:read", "zendesk:queue/Legal"), "no identity has userName nobody"),
            (Self.request(.grant, "bob", "tickets:read", "zendesk:queue/Legal", agent: "ghost"), "agent ghost is not configured or registered"),
            (Self.request(.grant, "bob", "tickets:read", "zendesk:queue/Legal", reason: " "), "reason must not be empty"),
            (Self.request(.grant, "bob", "", "zendesk:queue/Legal"), "scope must not be empty"),
        ]
        for (request, expected) in cases {
            guard case .refused(let reason) = try await world.engine.addException(request, actor: Self.operatorActor) else {
                Issue.record("expected a refusal containing '\(expected)'")
                continue
            }
            #expect(reason.contains(expected), "\(reason)")
        }
        // The same exception twice: the second is refused, naming the first.
        let (first, _) = try Self.applied(try await world.engine.addException(
            Self.request(.grant, "bob", "tickets:read", "zendesk:queue/Legal"), actor: Self.operatorActor))
        guard case .refused(let again) = try await world.engine.addException(
            Self.request(.grant, "bob", "tickets:read", "zendesk:queue/Legal"), actor: Self.operatorActor)
        else {
            Issue.record("a duplicate exception is refused")
            return
        }
        #expect(again.contains(first.id))
        #expect(try await world.auditActions().count == before + 2)
        #expect(try await world.store.exceptions().count == 1)
    }
}
