import Foundation
import Testing
import TetherConfig
import TetherCore
import TetherEngine
import TetherStore
@testable import TetherTargets

/// The drift check against a real HTTP target, a real store and a real engine.
@Suite(.timeLimit(.minutes(1)))
struct DriftTests {
    static let orphan = Grant(subject: "mallory", agent: "copilot", scope: "tickets:admin", resource: "zendesk:queue/*")

    /// A target in step with four grants, then tampered with: one grant lost, one orphan added.
    static func drifted(
        orphans: OrphanPolicy, safety: SafetyLimits? = nil, timeout: Duration = .seconds(5)
    ) async throws -> (World, FakeTarget, DriftChecker, lost: Grant) {
        let fake = FakeTarget()
        try await fake.start()
        let world = try safety.map { try World(targets: ["gw"], safety: $0) } ?? World(targets: ["gw"])
        try await world.seed()
        try await world.ldap("alice", department: "Support")
        let deliverer = Running(world.deliverer(try world.target(fake, id: "gw")))
        try await eventually("target in step") { try await world.pending("gw").isEmpty }
        await deliverer.stop()
        let lost = try #require(try await world.store.grants(subject: "alice", agent: nil).first?.grant)
        fake.forget([lost.id])
        fake.hold([orphan])
        let checker = DriftChecker(
            engine: world.engine, targets: [.init(try world.target(fake, id: "gw", timeout: timeout), orphans: orphans)],
            logger: .quiet, metricsFactory: world.metrics)
        return (world, fake, checker, lost)
    }

    @Test func orphansAreRevokedAndMissingGrantsResent() async throws {
        let (world, fake, checker, lost) = try await Self.drifted(orphans: .revoke)
        let report = try await checker.check(target: "gw")
        #expect(report.outcome == .applied)
        #expect(report.orphans == [Self.orphan])
        #expect(report.missing == [lost])
        #expect(report.applied.map(\.kind) == [.revokeOrphan, .resend])

        let queued = try await world.pending("gw")
        #expect(queued.map(\.operation) == [.delete, .put])
        #expect(queued.map(\.grantID) == [Self.orphan.id, lost.id])
        let records = try await world.audit().suffix(2)
        let revoked = try #require(records.first)
        #expect(revoked.action == "grant.revoked")
        #expect(revoked["target"] == "gw")
        #expect(revoked["reason"] == "drift: orphan on target")
        #expect(revoked["grant"] == Self.orphan.id)
        #expect(revoked["subject"] == "mallory")
        #expect(revoked["plan"] == report.drift?.id)
        let resent = try #require(records.last)
        #expect(resent.action == "grant.granted")
        #expect(resent["target"] == "gw")
        #expect(resent["reason"] == "drift: not on target")
        #expect(resent["policy"] == "support")
        #expect(resent["grant"] == lost.id)

        // Until delivered, the repairs are changes in flight, not drift again.
        let again = try await checker.check(target: "gw")
        #expect(again.drift?.isInStep == true)
        #expect(try await world.pending("gw").count == 2)

        let deliverer = Running(world.deliverer(try world.target(fake, id: "gw")))
        try await eventually("repairs delivered") { try await world.pending("gw").isEmpty }
        #expect(Set(fake.held.keys) == (try await world.grantIDs()))
        let settled = try await checker.check(target: "gw")
        #expect(settled.drift?.isInStep == true)
        #expect(try await world.store.verifyAuditChain() == .intact(records: try await world.audit().count))
        await deliverer.stop()
        await fake.stop()
    }

    @Test func orphansAreOnlyReportedWhenTheTargetSaysSo() async throws {
        let (world, fake, checker, lost) = try await Self.drifted(orphans: .report)
        let report = try await checker.check(target: "gw")
        #expect(report.applied.map(\.kind) == [.reportOrphan, .resend])
        // Nothing is sent to remove the orphan; the missing grant is re-sent.
        #expect(try await world.pending("gw").map(\.grantID) == [lost.id])
        let reported = try await world.audit().filter { $0.action == "grant.orphaned" }
        #expect(reported.count == 1)
        #expect(reported.first?["target"] == "gw")
        #expect(reported.first?["grant"] == Self.orphan.id)
        #expect(reported.first?["reason"]?.hasPrefix("drift: orphan on target") == true)
        #expect(try world.metrics.expectGauge("tether_target_orphans", [("target", "gw")]).lastValue == 1)

        // Reported once: the next check finds it again but does not audit it again.
        let before = try await world.audit().count
        let again = try await checker.check(target: "gw")
        #expect(again.orphans == [Self.orphan])
        #expect(again.applied.isEmpty)
        #expect(try await world.audit().count == before)
        #expect(fake.held[Self.orphan.id] != nil)
        await fake.stop()
    }

    @Test func aTargetThatLostEverythingGetsEveryGrantAgain() async throws {
        let (world, fake, checker, _) = try await Self.drifted(orphans: .revoke)
        fake.forget(Array(fake.held.keys))
        let report = try await checker.check(target: "gw")
        #expect(report.missing.count == 4)
        #expect(Set(try await world.pending("gw").map(\.grantID)) == (try await world.grantIDs()))
        await fake.stop()
    }

    enum Unreachable: String, CustomTestStringConvertible, Sendable {
        case down, status500, timeout, partialPaging, notTheContract
        var testDescription: String { rawValue }
    }

    @Test(arguments: [Unreachable.down, .status500, .timeout, .partialPaging, .notTheContract])
    func anUnreadableTargetIsUnknownNotEmpty(_ failure: Unreachable) async throws {
        let (world, fake, checker, _) = try await Self.drifted(
            orphans: .revoke, timeout: failure == .timeout ? .milliseconds(300) : .seconds(5))
        switch failure {
        case .down: await fake.stop()
        case .status500: fake.behaviour = .fail(status: 500)
        case .timeout: fake.behaviour = .hang
        case .partialPaging: fake.page(size: 2, failAfterPages: 1)
        case .notTheContract: fake.behaviour = .fail(status: 200)
        }
        let records = try await world.audit().count
        let report = try await checker.check(target: "gw")
        guard case .unknown = report.outcome else {
            Issue.record("expected an unknown target, got \(report.outcome)")
            return
        }
        #expect(report.drift == nil)
        #expect(try await world.pending("gw").isEmpty)
        #expect(try await world.audit().count == records)
        #expect(try world.metrics.expectCounter("tether_drift_unknown_total", [("target", "gw")]).totalValue == 1)
        fake.behaviour = .normal
        await fake.stop()
    }

    @Test(arguments: [FakeTarget.Paging.cursor, .path, .absoluteURL])
    func everyPageIsRead(_ paging: FakeTarget.Paging) async throws {
        let (world, fake, checker, lost) = try await Self.drifted(orphans: .revoke)
        fake.page(size: 1, paging: paging)
        fake.forgetRequests()
        let report = try await checker.check(target: "gw")
        #expect(report.orphans == [Self.orphan])
        #expect(report.missing == [lost])
        let gets = fake.requests.filter { $0.method == "GET" }
        #expect(gets.count == 4)
        #expect(gets.allSatisfy { $0.signatureValid })
        #expect(gets.map(\.path) == ["/grants", "/grants?cursor=1", "/grants?cursor=2", "/grants?cursor=3"])
        _ = world
        await fake.stop()
    }

    @Test func driftPastTheSafetyLimitsIsHeldUntilApproved() async throws {
        let safety = SafetyLimits(maxRevocationsPerRun: 1, maxRevocationRatio: 1, minGrantsForRatio: 1_000_000)
        let (world, fake, checker, _) = try await Self.drifted(orphans: .revoke, safety: safety)
        fake.hold([
            Grant(subject: "eve", agent: "copilot", scope: "tickets:read", resource: "zendesk:queue/Sales"),
            Grant(subject: "trent", agent: "copilot", scope: "tickets:read", resource: "zendesk:queue/Sales"),
        ])
        let report = try await checker.check(target: "gw")
        guard case .held(let reason) = report.outcome else {
            Issue.record("expected a held drift, got \(report.outcome)")
            return
        }
        #expect(reason.contains("drift on target gw"))
        #expect(reason.contains("maxRevocationsPerRun"))
        #expect(try await world.pending("gw").isEmpty)
        _ = try await checker.check(target: "gw")
        let held = try await world.audit().filter { $0.action == "plan.held" }
        #expect(held.count == 1)
        #expect(held.first?["target"] == "gw")
        #expect(held.first?["plan"] == report.drift?.id)
        #expect(held.first?["revocations"] == "3")

        // The held drift is a plan like any other: `tether plans` lists it by its scope.
        let planID = try #require(report.drift?.id)
        let listed = try await world.store.plans(status: .held)
        #expect(listed.map(\.plan.id) == [planID])
        #expect(listed.first?.plan.scope == .target("gw"))
        #expect(listed.first?.plan.revocations == 3)

        let outcome = try await checker.approve(planID: planID, target: "gw", actor: .operator("root"))
        guard case .applied(let plan) = outcome else {
            Issue.record("expected the held drift to be applied, got \(outcome)")
            return
        }
        #expect(plan.id == planID)
        #expect(try await world.pending("gw").filter { $0.operation == .delete }.count == 3)
        #expect(try await world.audit().contains { $0.action == "plan.approved" && $0["plan"] == planID })
        #expect(try await world.store.plan(id: planID)?.status == .approved)
        #expect(try await checker.approve(planID: planID, target: "gw", actor: .operator("root")) == .notHeld(.approved))
        await fake.stop()
    }

    @Test func aHeldDriftThatChangedIsStaleAndARejectedOneIsHeldAgain() async throws {
        let safety = SafetyLimits(maxRevocationsPerRun: 1, maxRevocationRatio: 1, minGrantsForRatio: 1_000_000)
        let (world, fake, checker, _) = try await Self.drifted(orphans: .revoke, safety: safety)
        let extra = Grant(subject: "eve", agent: "copilot", scope: "tickets:read", resource: "zendesk:queue/Sales")
        fake.hold([extra])
        let report = try await checker.check(target: "gw")
        let planID = try #require(report.drift?.id)

        // One more orphan since: approving the old plan applies nothing.
        let another = Grant(subject: "trent", agent: "copilot", scope: "tickets:read", resource: "zendesk:queue/Sales")
        fake.hold([another])
        guard case .stale(let fresh) = try await checker.approve(planID: planID, target: "gw", actor: .operator("root")) else {
            Issue.record("expected a stale plan")
            return
        }
        #expect(fresh.id != planID)
        #expect(fresh.revocations == 3)
        #expect(try await world.pending("gw").isEmpty)
        #expect(try await world.store.plan(id: planID)?.status == .held)

        // Rejected, then found again by the next check: held again, and audited again.
        fake.forget([another.id])
        let rejected = try await world.engine.reject(planID: planID, actor: .operator("root"))
        #expect(rejected == .applied(try #require(try await world.store.plan(id: planID)?.plan)))
        #expect(try await world.store.plan(id: planID)?.status == .rejected)
        _ = try await checker.check(target: "gw")
        #expect(try await world.store.plan(id: planID)?.status == .held)
        #expect(try await world.audit().count { $0.action == "plan.held" && $0["plan"] == planID } == 2)
        #expect(try await world.pending("gw").isEmpty)
        await fake.stop()
    }

    @Test func aHeldDriftIsResolvedOnceTheTargetIsBackInStep() async throws {
        let safety = SafetyLimits(maxRevocationsPerRun: 1, maxRevocationRatio: 1, minGrantsForRatio: 1_000_000)
        let (world, fake, checker, lost) = try await Self.drifted(orphans: .revoke, safety: safety)
        let orphans = [
            Grant(subject: "eve", agent: "copilot", scope: "tickets:read", resource: "zendesk:queue/Sales"),
            Grant(subject: "trent", agent: "copilot", scope: "tickets:read", resource: "zendesk:queue/Sales"),
        ]
        fake.hold(orphans)
        let first = try #require(try await checker.check(target: "gw").drift?.id)
        // One orphan gone: still past the limit, another plan; it replaces the first.
        fake.forget([orphans[0].id])
        let second = try #require(try await checker.check(target: "gw").drift?.id)
        #expect(second != first)
        #expect(try await world.store.plans(status: .held).map(\.plan.id) == [second])
        #expect(try await world.store.plan(id: first)?.status == .rejected)

        // Someone cleaned the target by hand: nothing is left to approve.
        fake.forget([orphans[1].id, Self.orphan.id])
        fake.hold([lost])
        let report = try await checker.check(target: "gw")
        #expect(report.drift?.isInStep == true)
        #expect(try await world.store.plans(status: .held).isEmpty)
        let rejected = try await world.audit().filter { $0.action == "plan.rejected" }
        #expect(rejected.map { $0["plan"] } == [first, second])
        #expect(rejected.allSatisfy { $0["scope"] == "target:gw" && $0["reason"]?.contains("superseded") == true })
        #expect(try await world.pending("gw").isEmpty, "nothing was sent")
        await fake.stop()
    }

    @Test func changesInFlightAreNotDrift() async throws {
        let fake = FakeTarget()
        try await fake.start()
        let world = try World(targets: ["gw"])
        try await world.seed()
        let checker = DriftChecker(
            engine: world.engine, targets: [.init(try world.target(fake, id: "gw"), orphans: .revoke)], logger: .quiet,
            metricsFactory: world.metrics)
        // Granted, not yet delivered: the target lacks them, as expected.
        #expect(try await checker.check(target: "gw").drift?.isInStep == true)
        let deliverer = Running(world.deliverer(try world.target(fake, id: "gw")))
        try await eventually("delivered") { try await world.pending("gw").isEmpty }
        await deliverer.stop()
        // Revoked, not yet delivered: the target still holds them, as expected.
        try await world.ldap("jdoe", department: "Sales")
        #expect(try await world.pending("gw").count == 2)
        #expect(try await checker.check(target: "gw").drift?.isInStep == true)
        #expect(try await world.pending("gw").count == 2)
        await fake.stop()
    }

    @Test func aRepairWhoseGrantChangedDuringTheCheckIsDropped() async throws {
        let world = try World(targets: ["gw"])
        try await world.seed()
        try await world.ldap("alice", department: "Support")
        let alice = try #require(try await world.store.grants(subject: "alice", agent: nil).first?.grant)
        let baseline = try await world.store.targetBaseline(target: "gw")
        let drift = TargetDrift.compare(
            target: "gw", baseline: TargetBaseline(grants: baseline.grants, policies: baseline.policies, waiting: [], auditSeq: baseline.auditSeq),
            held: [], orphans: .revoke)
        #expect(drift.missing.contains(alice))
        // While the target was being read, alice left: re-sending her grant would resurrect it.
        try await world.ldap("alice", department: "Support", status: .terminated)
        let repairs = drift.repairs(policies: baseline.policies, policySet: "sha256:x", actor: .policy, time: Date())
        let applied = try await world.store.commitTargetRepairs(repairs, audit: [], resolution: nil, supersedes: nil, unchangedAfter: baseline.auditSeq, time: Date())
        #expect(!applied.contains { $0.grant == alice })
        let puts = try await world.pending("gw").filter { $0.grantID == alice.id }.map(\.operation)
        // Only the engine's own rows for alice: her grant, then its revocation.
        #expect(puts == [.put, .delete])
    }

    @Test func anUnknownTargetIsAnError() async throws {
        let world = try World(targets: [])
        let checker = DriftChecker(engine: world.engine, targets: [], logger: .quiet, metricsFactory: world.metrics)
        await #expect(throws: TargetError.self) { try await checker.check(target: "nope") }
    }
}
