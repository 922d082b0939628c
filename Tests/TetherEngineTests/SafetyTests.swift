import Foundation
import Testing
import TetherCore
import TetherEngine
import TetherStore

/// Plans that would revoke too much are held for an operator; explicit leavers never are.
@Suite struct SafetyTests {
    /// Seeds `count` support staff with two grants each.
    static func seedStaff(_ world: World, count: Int) async throws {
        try await world.seedSponsors()
        for index in 0..<count {
            _ = try await world.engine.submit(Events.ldapEvent(Events.ldap(
                "user\(index)", version: 2, groups: ["support"], department: "Support", employeeNumber: "\(5000 + index)")))
        }
    }

    static let withoutSupport = PolicySet(
        agents: Fixtures.policySet.agents, policies: [Fixtures.hrRecords])

    @Test func planOverMaxRevocationsPerRunIsHeld() async throws {
        let world = try World(safety: SafetyLimits(maxRevocationsPerRun: 5, maxRevocationRatio: 1, minGrantsForRatio: 1_000))
        try await Self.seedStaff(world, count: 3)
        let outcome = try await world.engine.reload(
            EngineConfiguration(policySet: Self.withoutSupport, safety: SafetyLimits(maxRevocationsPerRun: 5, maxRevocationRatio: 1, minGrantsForRatio: 1_000)),
            actor: .operator("root"))
        guard case .held(let plan) = outcome else { Issue.record("expected a held plan, got \(outcome)"); return }
        #expect(plan.held == "would revoke 6 grants, more than maxRevocationsPerRun 5")
        #expect(try await world.grantLines().filter { $0.contains("support-copilot") }.count == 6)
        #expect(try await world.store.plans(status: .held).map(\.plan.id) == [plan.id])
        #expect(try await world.auditActions().suffix(2) == ["config.reloaded", "plan.held"])
    }

    @Test func planOverMaxRevocationRatioIsHeld() async throws {
        let safety = SafetyLimits(maxRevocationsPerRun: 1_000, maxRevocationRatio: 0.5, minGrantsForRatio: 4)
        let world = try World(safety: safety)
        try await Self.seedStaff(world, count: 3)
        let outcome = try await world.engine.reload(EngineConfiguration(policySet: Self.withoutSupport, safety: safety), actor: .policy)
        #expect(outcome.plan.held == "would revoke 6 of 8 grants (75.0%), more than maxRevocationRatio 0.5")
        #expect(try await world.grantLines().count == 8)
    }

    @Test func ratioIsNotAppliedBelowMinGrantsForRatio() async throws {
        let safety = SafetyLimits(maxRevocationsPerRun: 1_000, maxRevocationRatio: 0.5, minGrantsForRatio: 100)
        let world = try World(safety: safety)
        try await Self.seedStaff(world, count: 3)
        let outcome = try await world.engine.reload(EngineConfiguration(policySet: Self.withoutSupport, safety: safety), actor: .policy)
        guard case .applied(let plan) = outcome else { Issue.record("expected applied, got \(outcome)"); return }
        #expect(plan.revocations == 6)
    }

    @Test func scanThatReturnsZeroUsersIsHeldAndChangesNothing() async throws {
        let world = try World(safety: SafetyLimits(maxRevocationsPerRun: 1_000, maxRevocationRatio: 1, minGrantsForRatio: 1_000))
        try await Self.seedStaff(world, count: 2)
        let before = try await world.grantLines()
        let outcome = try await world.engine.applySnapshot(DirectorySnapshot(source: .ldap, users: [], mode: "poll"))
        guard case .held(let plan) = outcome else { Issue.record("expected held, got \(outcome)"); return }
        #expect(plan.held == "source scan returned zero users")
        #expect(try await world.grantLines() == before)
        #expect(try await world.identities(status: .terminated).isEmpty)
        // The same suspicious read again does not pile up held plans.
        _ = try await world.engine.applySnapshot(DirectorySnapshot(source: .ldap, users: [], mode: "poll"))
        #expect(try await world.store.plans(status: .held).count == 1)
    }

    @Test func aHeldDirectoryReadIsNotApprovedOverNewerFacts() async throws {
        let world = try World(safety: SafetyLimits(maxRevocationsPerRun: 1_000, maxRevocationRatio: 1, minGrantsForRatio: 1_000))
        try await Self.seedStaff(world, count: 2)
        let outcome = try await world.engine.applySnapshot(DirectorySnapshot(source: .ldap, users: [], mode: "poll"))
        guard case .held(let held) = outcome else { Issue.record("expected held, got \(outcome)"); return }

        // HR records a mover for user1 meanwhile, with no effect on grants: the plan is the same,
        // but the held read carries user1 as it was before, and would erase the HR record.
        let mover = Events.hr("evt-user1", .mover, employeeNumber: "5001", at: 20, department: "Support")
        #expect(try await world.engine.submit(mover).status == .applied)
        let before = try await world.grantLines()
        let refused = try await world.engine.approve(planID: held.id, actor: .operator("root"))
        #expect(refused == .identitiesChanged(["user1"]))
        #expect(try await world.grantLines() == before)
        #expect(try await world.store.plan(id: held.id)?.status == .held)
        #expect(try await world.store.identity(userName: "user1")?.sources[.hr] != nil)
        #expect(try await world.store.identity(userName: "user0")?.status == .active, "nothing of the held read applied")
    }

    @Test func aHeldDirectoryReadIsAppliedWhenNobodyChangedSince() async throws {
        let world = try World(safety: SafetyLimits(maxRevocationsPerRun: 1_000, maxRevocationRatio: 1, minGrantsForRatio: 1_000))
        try await Self.seedStaff(world, count: 2)
        let outcome = try await world.engine.applySnapshot(DirectorySnapshot(source: .ldap, users: [], mode: "poll"))
        guard case .held(let held) = outcome else { Issue.record("expected held, got \(outcome)"); return }
        let approved = try await world.engine.approve(planID: held.id, actor: .operator("root"))
        guard case .applied = approved else { Issue.record("expected applied, got \(approved)"); return }
        #expect(try await world.store.identity(userName: "user0")?.status == .terminated)
        #expect(try await world.store.identity(userName: "user1")?.status == .terminated)
    }

    @Test func explicitLeaverIsNeverHeld() async throws {
        let world = try World(safety: SafetyLimits(maxRevocationsPerRun: 0, maxRevocationRatio: 0, minGrantsForRatio: 0))
        try await Self.seedStaff(world, count: 1)
        let outcome = try await world.engine.submit(Events.hr("evt-1", .leaver, employeeNumber: "5000", at: 10))
        #expect(outcome.status == .applied)
        #expect(outcome.revoked == 2)
        #expect(try await world.store.plans(status: .held).isEmpty)
    }

    @Test func directoryMoverOverTheLimitIsHeldButItsIdentityChangeStands() async throws {
        let world = try World(safety: SafetyLimits(maxRevocationsPerRun: 1, maxRevocationRatio: 1, minGrantsForRatio: 1_000))
        try await Self.seedStaff(world, count: 1)
        let outcome = try await world.engine.submit(Events.ldapEvent(Events.ldap(
            "user0", version: 3, department: "Support", employeeNumber: "5000")))
        #expect(outcome.status == .held)
        #expect(try await world.grantLines().filter { $0.hasPrefix("user0 ") }.count == 2)
    }

    @Test func approvingAFreshPlanAppliesItAndAStaleOneIsRefused() async throws {
        let safety = SafetyLimits(maxRevocationsPerRun: 2, maxRevocationRatio: 1, minGrantsForRatio: 1_000)
        let world = try World(safety: safety)
        try await Self.seedStaff(world, count: 2)
        let held = try await world.engine.reload(EngineConfiguration(policySet: Self.withoutSupport, safety: safety), actor: .policy)
        #expect(held.plan.held != nil)

        // Fresh: nothing changed since; approval applies exactly the held plan.
        let approved = try await world.engine.approve(planID: held.plan.id, actor: .operator("root"))
        guard case .applied(let plan) = approved else { Issue.record("expected applied, got \(approved)"); return }
        #expect(plan.id == held.plan.id)
        #expect(try await world.grantLines().filter { $0.contains("support-copilot") }.isEmpty)
        #expect(try await world.store.plan(id: held.plan.id)?.status == .approved)
        #expect(try await world.auditActions().contains("plan.approved"))
        #expect(try await world.engine.approve(planID: held.plan.id, actor: .operator("root")) == .notHeld(.approved))
    }

    @Test func approvingAPlanThatNoLongerMatchesIsStale() async throws {
        let safety = SafetyLimits(maxRevocationsPerRun: 2, maxRevocationRatio: 1, minGrantsForRatio: 1_000)
        let world = try World(safety: safety)
        try await Self.seedStaff(world, count: 2)
        let held = try await world.engine.reload(EngineConfiguration(policySet: Self.withoutSupport, safety: safety), actor: .policy)
        // The world moves on: one of the people the plan would revoke leaves by HR.
        _ = try await world.engine.submit(Events.hr("evt-9", .leaver, employeeNumber: "5000", at: 10))
        let outcome = try await world.engine.approve(planID: held.plan.id, actor: .operator("root"))
        guard case .stale(let fresh) = outcome else { Issue.record("expected stale, got \(outcome)"); return }
        #expect(fresh.id != held.plan.id)
        #expect(try await world.store.plan(id: held.plan.id)?.status == .held)
        #expect(try await world.engine.approve(planID: "p_nope", actor: .operator("root")) == .notFound)
    }

    @Test func rejectingAHeldPlanDiscardsIt() async throws {
        let safety = SafetyLimits(maxRevocationsPerRun: 2, maxRevocationRatio: 1, minGrantsForRatio: 1_000)
        let world = try World(safety: safety)
        try await Self.seedStaff(world, count: 2)
        let held = try await world.engine.reload(EngineConfiguration(policySet: Self.withoutSupport, safety: safety), actor: .policy)
        _ = try await world.engine.reject(planID: held.plan.id, actor: .operator("root"))
        #expect(try await world.store.plan(id: held.plan.id)?.status == .rejected)
        #expect(try await world.auditActions().last == "plan.rejected")
        #expect(try await world.grantLines().filter { $0.contains("support-copilot") }.count == 4)
    }
}

extension World {
    func identities(status: IdentityStatus) async throws -> [Identity] {
        try await store.identities(status: status)
    }
}
