import Foundation
import Testing
import TetherCore
import TetherEngine
import TetherStore

/// A held plan lasts only as long as its situation: a later computation for the same scope
/// that applies, finds nothing to do or is held with other steps resolves it, so that
/// `tether plans`, `tether status` and the held-plans gauge list only what can still be approved.
/// Decided by the pure decision step over memory (``DecisionWorld``).
@Suite struct HeldPlanSupersessionTests {
    static let safety = SafetyLimits(maxRevocationsPerRun: 2, maxRevocationRatio: 1, minGrantsForRatio: 1_000)

    @Test func aReconciliationWithNothingToDoResolvesTheHeldPlan() throws {
        let world = DecisionWorld(safety: Self.safety)
        try SafetyTests.seedStaff(world, count: 2)
        let held = try world.reload(
            EngineConfiguration(policySet: SafetyTests.withoutSupport, safety: Self.safety), actor: .policy)
        #expect(held.plan.held != nil)

        // The policy comes back before anyone approves: the held revocations no longer follow.
        _ = try world.reload(EngineConfiguration(policySet: Fixtures.policySet, safety: Self.safety), actor: .policy)
        #expect(try world.heldPlans().isEmpty)
        let resolved = try #require(try world.reads.plan(id: held.plan.id))
        #expect(resolved.status == .rejected)
        #expect(resolved.resolvedBy == "policy (superseded)")
        let record = try #require(world.memory.audit.last)
        #expect(record.action == .planRejected)
        #expect(record.fields["plan"] == held.plan.id && record.fields["scope"] == "full" && record.actor == .policy)
        #expect(record.fields["reason"]?.contains("superseded") == true, "\(record)")
        #expect(try world.approve(planID: held.plan.id, actor: .operator("root")) == .notHeld(.rejected))
        #expect(world.grantLines().filter { $0.contains("support-copilot") }.count == 4, "nothing revoked")

        // Resolved once: a further reconciliation records nothing more.
        let records = world.auditActions().count
        try world.reconcile(origin: .other, actor: .scheduler)
        #expect(world.auditActions().count == records)
    }

    @Test func aDifferentHeldPlanForTheSameScopeReplacesTheOlderOne() throws {
        let world = DecisionWorld(safety: Self.safety)
        try SafetyTests.seedStaff(world, count: 3)
        let first = try world.reload(
            EngineConfiguration(policySet: SafetyTests.withoutSupport, safety: Self.safety), actor: .policy)
        #expect(first.plan.revocations == 6)
        // One of the people leaves by HR (never held); the full plan now revokes 4: held again.
        #expect(try world.submit(Events.hr("evt-1", .leaver, employeeNumber: "5000", at: 10)).status == .applied)
        #expect(try world.reads.plan(id: first.plan.id)?.status == .held, "an identity's plan leaves the full plan alone")
        let second = try world.reconcile(origin: .other, actor: .scheduler)
        guard case .held(let plan) = second else { Issue.record("expected held, got \(second)"); return }
        #expect(plan.id != first.plan.id && plan.revocations == 4)

        #expect(try world.heldPlans().map(\.plan.id) == [plan.id])
        #expect(try world.reads.plan(id: first.plan.id)?.status == .rejected)
        let rejected = world.memory.audit.filter { $0.action == .planRejected }
        #expect(rejected.map { $0.fields["plan"] } == [first.plan.id])
        #expect(rejected.first?.fields["reason"] == "superseded by plan \(plan.id), held for the same scope")
        // The same situation once more keeps the held plan as it is.
        _ = try world.reconcile(origin: .other, actor: .scheduler)
        #expect(try world.heldPlans().map(\.plan.id) == [plan.id])
    }

    @Test func aHeldDirectoryReadWaitsForTheNextReadNotForATimer() throws {
        let world = DecisionWorld(safety: SafetyLimits(maxRevocationsPerRun: 1_000, maxRevocationRatio: 1, minGrantsForRatio: 1_000))
        try SafetyTests.seedStaff(world, count: 2)
        let empty = try world.applySnapshot(DirectorySnapshot(source: .ldap, users: [], mode: "poll"))
        guard case .held(let held) = empty else { Issue.record("expected held, got \(empty)"); return }

        // A timer's reconciliation computes without the read's changes: it says nothing of them.
        try world.reconcile(origin: .other, actor: .scheduler)
        #expect(try world.heldPlans().map(\.plan.id) == [held.id])

        // The next read lists everyone again: the suspicious one is obsolete.
        let everyone = [
            Events.ldap("boss", version: 1, department: "Exec"), Events.ldap("jdoe", version: 1, department: "Support"),
            Events.ldap("mkhan", version: 1, department: "People", title: "HR Partner", manager: "uuid-boss"),
        ] + (0..<2).map {
            Events.ldap("user\($0)", version: 2, groups: ["support"], department: "Support", employeeNumber: "\(5000 + $0)")
        }
        let next = try world.applySnapshot(DirectorySnapshot(source: .ldap, users: everyone, mode: "poll"))
        guard case .applied = next else { Issue.record("expected applied, got \(next)"); return }
        #expect(try world.heldPlans().isEmpty)
        #expect(try world.reads.plan(id: held.id)?.status == .rejected)
        #expect(try world.reads.plan(id: held.id)?.resolvedBy == "ldap (superseded)")
        #expect(try world.reads.identities(status: .terminated).isEmpty, "none of the held read's changes applied")
    }
}
