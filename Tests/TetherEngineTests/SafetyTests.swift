import Foundation
import Testing
import TetherCore
import TetherEngine
import TetherStore

/// Plans that would revoke too much are held for an operator; explicit leavers never are.
/// Decided by the pure decision step over memory (``DecisionWorld``).
@Suite struct SafetyTests {
    /// Seeds `count` support staff with two grants each.
    static func seedStaff(_ world: World, count: Int) async throws {
        try await world.seedSponsors()
        for index in 0..<count {
            _ = try await world.engine.submit(Events.ldapEvent(Events.ldap(
                "user\(index)", version: 2, groups: ["support"], department: "Support", employeeNumber: "\(5000 + index)")))
        }
    }

    /// ``seedStaff(_:count:)`` over memory.
    static func seedStaff(_ world: DecisionWorld, count: Int) throws {
        try world.seedSponsors()
        for index in 0..<count {
            try world.submit(Events.ldapEvent(Events.ldap(
                "user\(index)", version: 2, groups: ["support"], department: "Support", employeeNumber: "\(5000 + index)")))
        }
    }

    static let withoutSupport = PolicySet(
        agents: Fixtures.policySet.agents, policies: [Fixtures.hrRecords])

    @Test func planOverMaxRevocationsPerRunIsHeld() throws {
        let world = DecisionWorld(safety: SafetyLimits(maxRevocationsPerRun: 5, maxRevocationRatio: 1, minGrantsForRatio: 1_000))
        try Self.seedStaff(world, count: 3)
        let outcome = try world.reload(
            EngineConfiguration(policySet: Self.withoutSupport, safety: SafetyLimits(maxRevocationsPerRun: 5, maxRevocationRatio: 1, minGrantsForRatio: 1_000)),
            actor: .operator("root"))
        guard case .held(let plan) = outcome else { Issue.record("expected a held plan, got \(outcome)"); return }
        #expect(plan.held == "would revoke 6 grants, more than maxRevocationsPerRun 5")
        #expect(world.grantLines().filter { $0.contains("support-copilot") }.count == 6)
        #expect(try world.heldPlans().map(\.plan.id) == [plan.id])
        #expect(world.auditActions().suffix(2) == ["config.reloaded", "plan.held"])
    }

    @Test func planOverMaxRevocationRatioIsHeld() throws {
        let safety = SafetyLimits(maxRevocationsPerRun: 1_000, maxRevocationRatio: 0.5, minGrantsForRatio: 4)
        let world = DecisionWorld(safety: safety)
        try Self.seedStaff(world, count: 3)
        let outcome = try world.reload(EngineConfiguration(policySet: Self.withoutSupport, safety: safety), actor: .policy)
        #expect(outcome.plan.held == "would revoke 6 of 8 grants (75.0%), more than maxRevocationRatio 0.5")
        #expect(world.grantLines().count == 8)
    }

    @Test func ratioIsNotAppliedBelowMinGrantsForRatio() throws {
        let safety = SafetyLimits(maxRevocationsPerRun: 1_000, maxRevocationRatio: 0.5, minGrantsForRatio: 100)
        let world = DecisionWorld(safety: safety)
        try Self.seedStaff(world, count: 3)
        let outcome = try world.reload(EngineConfiguration(policySet: Self.withoutSupport, safety: safety), actor: .policy)
        guard case .applied(let plan) = outcome else { Issue.record("expected applied, got \(outcome)"); return }
        #expect(plan.revocations == 6)
    }

    @Test func scanThatReturnsZeroUsersIsHeldAndChangesNothing() throws {
        let world = DecisionWorld(safety: SafetyLimits(maxRevocationsPerRun: 1_000, maxRevocationRatio: 1, minGrantsForRatio: 1_000))
        try Self.seedStaff(world, count: 2)
        let before = world.grantLines()
        let outcome = try world.applySnapshot(DirectorySnapshot(source: .ldap, users: [], mode: "poll"))
        guard case .held(let plan) = outcome else { Issue.record("expected held, got \(outcome)"); return }
        #expect(plan.held == "source scan returned zero users")
        #expect(world.grantLines() == before)
        #expect(try world.reads.identities(status: .terminated).isEmpty)
        // The same suspicious read again does not pile up held plans.
        _ = try world.applySnapshot(DirectorySnapshot(source: .ldap, users: [], mode: "poll"))
        #expect(try world.heldPlans().count == 1)
    }

    @Test func aHeldDirectoryReadIsNotApprovedOverNewerFacts() throws {
        let world = DecisionWorld(safety: SafetyLimits(maxRevocationsPerRun: 1_000, maxRevocationRatio: 1, minGrantsForRatio: 1_000))
        try Self.seedStaff(world, count: 2)
        let outcome = try world.applySnapshot(DirectorySnapshot(source: .ldap, users: [], mode: "poll"))
        guard case .held(let held) = outcome else { Issue.record("expected held, got \(outcome)"); return }

        // HR records a mover for user1 meanwhile, with no effect on grants: the plan is the same,
        // but the held read carries user1 as it was before, and would erase the HR record.
        let mover = Events.hr("evt-user1", .mover, employeeNumber: "5001", at: 20, department: "Support")
        #expect(try world.submit(mover).status == .applied)
        let before = world.grantLines()
        let refused = try world.approve(planID: held.id, actor: .operator("root"))
        #expect(refused == .identitiesChanged(["user1"]))
        #expect(world.grantLines() == before)
        #expect(try world.reads.plan(id: held.id)?.status == .held)
        #expect(try world.reads.identity(userName: "user1")?.sources[.hr] != nil)
        #expect(try world.reads.identity(userName: "user0")?.status == .active, "nothing of the held read applied")
    }

    @Test func aHeldDirectoryReadIsAppliedWhenNobodyChangedSince() throws {
        let world = DecisionWorld(safety: SafetyLimits(maxRevocationsPerRun: 1_000, maxRevocationRatio: 1, minGrantsForRatio: 1_000))
        try Self.seedStaff(world, count: 2)
        let outcome = try world.applySnapshot(DirectorySnapshot(source: .ldap, users: [], mode: "poll"))
        guard case .held(let held) = outcome else { Issue.record("expected held, got \(outcome)"); return }
        let approved = try world.approve(planID: held.id, actor: .operator("root"))
        guard case .applied = approved else { Issue.record("expected applied, got \(approved)"); return }
        #expect(try world.reads.identity(userName: "user0")?.status == .terminated)
        #expect(try world.reads.identity(userName: "user1")?.status == .terminated)
    }

    @Test func explicitLeaverIsNeverHeld() throws {
        let world = DecisionWorld(safety: SafetyLimits(maxRevocationsPerRun: 0, maxRevocationRatio: 0, minGrantsForRatio: 0))
        try Self.seedStaff(world, count: 1)
        let outcome = try world.submit(Events.hr("evt-1", .leaver, employeeNumber: "5000", at: 10))
        #expect(outcome.status == .applied)
        #expect(outcome.revoked == 2)
        #expect(try world.heldPlans().isEmpty)
    }

    @Test func directoryMoverOverTheLimitIsHeldButItsIdentityChangeStands() throws {
        let world = DecisionWorld(safety: SafetyLimits(maxRevocationsPerRun: 1, maxRevocationRatio: 1, minGrantsForRatio: 1_000))
        try Self.seedStaff(world, count: 1)
        let outcome = try world.submit(Events.ldapEvent(Events.ldap(
            "user0", version: 3, department: "Support", employeeNumber: "5000")))
        #expect(outcome.status == .held)
        #expect(world.grantLines().filter { $0.hasPrefix("user0 ") }.count == 2)
        #expect(try world.identity("user0")?.groups.isEmpty == true, "the person's change applies")
        #expect(try world.heldPlans().map(\.plan.scope) == [.identity(try #require(outcome.identity))])
    }

    @Test func approvingAPlanThatNoLongerMatchesIsStale() throws {
        let safety = SafetyLimits(maxRevocationsPerRun: 2, maxRevocationRatio: 1, minGrantsForRatio: 1_000)
        let world = DecisionWorld(safety: safety)
        try Self.seedStaff(world, count: 2)
        let held = try world.reload(EngineConfiguration(policySet: Self.withoutSupport, safety: safety), actor: .policy)
        // The world moves on: one of the people the plan would revoke leaves by HR.
        _ = try world.submit(Events.hr("evt-9", .leaver, employeeNumber: "5000", at: 10))
        let outcome = try world.approve(planID: held.plan.id, actor: .operator("root"))
        guard case .stale(let fresh) = outcome else { Issue.record("expected stale, got \(outcome)"); return }
        #expect(fresh.id != held.plan.id)
        #expect(try world.reads.plan(id: held.plan.id)?.status == .held)
        #expect(try world.approve(planID: "p_nope", actor: .operator("root")) == .notFound)
    }

    @Test func rejectingAHeldPlanDiscardsIt() throws {
        let safety = SafetyLimits(maxRevocationsPerRun: 2, maxRevocationRatio: 1, minGrantsForRatio: 1_000)
        let world = DecisionWorld(safety: safety)
        try Self.seedStaff(world, count: 2)
        let held = try world.reload(EngineConfiguration(policySet: Self.withoutSupport, safety: safety), actor: .policy)
        _ = try world.reject(planID: held.plan.id, actor: .operator("root"))
        #expect(try world.reads.plan(id: held.plan.id)?.status == .rejected)
        #expect(world.auditActions().last == "plan.rejected")
        #expect(world.grantLines().filter { $0.contains("support-copilot") }.count == 4)
    }
}

/// An approval of a full reconciliation's held plan through the engine and SQLite.
@Suite struct SafetyEngineTests {
    @Test func approvingAFreshPlanAppliesItAndAStaleOneIsRefused() async throws {
        let safety = SafetyLimits(maxRevocationsPerRun: 2, maxRevocationRatio: 1, minGrantsForRatio: 1_000)
        let world = try World(safety: safety)
        try await SafetyTests.seedStaff(world, count: 2)
        let held = try await world.engine.reload(EngineConfiguration(policySet: SafetyTests.withoutSupport, safety: safety), actor: .policy)
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
}

extension World {
    func identities(status: IdentityStatus) async throws -> [Identity] {
        try await store.identities(status: status)
    }
}
