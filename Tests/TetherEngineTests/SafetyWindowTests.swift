import Foundation
import Testing
import TetherCore
import TetherEngine
import TetherStore

/// A mass deletion streamed as single changes meets the limits of one complete read: the
/// revocations one source causes within `safety.window` count together (SPEC §6). Decided by
/// the pure decision step over memory (``DecisionWorld``).
@Suite struct SafetyWindowTests {
    /// At most 5 revocations per source per 10 minutes; the ratio is out of the way.
    static let safety = SafetyLimits(maxRevocationsPerRun: 5, maxRevocationRatio: 1, minGrantsForRatio: 1_000_000, window: 600)

    /// Six support staff (user0…user5), two copilot grants each.
    static func world() throws -> DecisionWorld {
        let world = DecisionWorld(safety: safety)
        try SafetyTests.seedStaff(world, count: 6)
        return world
    }

    static func delete(_ user: String, in world: DecisionWorld) throws -> EventOutcome {
        try world.applyDirectoryDeletion(externalId: "uuid-\(user)", source: .ldap, mode: "syncrepl")
    }

    func grants(of user: String, in world: DecisionWorld) -> Int {
        world.grantLines().filter { $0.hasPrefix("\(user) ") }.count
    }

    @Test func streamedDirectoryDeletionsPastTheBudgetAreHeldInOneGrowingPlan() throws {
        let world = try Self.world()
        #expect(try Self.delete("user0", in: world).status == .applied)
        #expect(try Self.delete("user1", in: world).status == .applied)
        #expect(try world.reads.revocationWindow(.ldap)?.revocations == 4)

        // The third deletion would make 6 revocations within the window: held.
        let third = try Self.delete("user2", in: world)
        #expect(third.status == .held)
        #expect(third.plan?.scope == .window(.ldap))
        #expect(third.plan?.held == "ldap revoked 4 grants within 10m; 2 more would make 6, more than maxRevocationsPerRun 5")
        let fourth = try Self.delete("user3", in: world)
        #expect(fourth.status == .held)

        // One held plan, grown by the fourth deletion; the grants and the people stay as they are.
        let held = try world.heldPlans()
        #expect(held.map(\.plan.id) == [fourth.plan?.id])
        #expect(held.first?.plan.revocations == 4)
        #expect(held.first?.plan.held == third.plan?.held, "the plan keeps the reason it was first held for")
        #expect(Set(held.first?.pendingIdentities.map(\.userName) ?? []) == ["user2", "user3"])
        for user in ["user2", "user3"] {
            #expect(grants(of: user, in: world) == 2, "\(user)'s grants stay in force")
            #expect(try world.identity(user)?.status == .active)
        }
        #expect(try world.reads.revocationWindow(.ldap)?.revocations == 4, "held revocations are not counted")
        let actions = world.auditActions()
        #expect(actions.filter { $0 == "plan.held" }.count == 2)
        #expect(actions.last == "plan.rejected", "the smaller plan is superseded by the grown one")

        // Approving applies every held step and the people's changes, through the approval path.
        let approved = try world.approve(planID: fourth.plan!.id, actor: .operator("root"))
        guard case .applied(let plan) = approved else { Issue.record("expected applied, got \(approved)"); return }
        #expect(plan.revocations == 4)
        for user in ["user2", "user3"] {
            #expect(grants(of: user, in: world) == 0)
            #expect(try world.identity(user)?.status == .terminated)
        }
        #expect(try world.heldPlans().isEmpty)
        #expect(try world.reads.revocationWindow(.ldap)?.revocations == 4, "an operator's approval is not the source's doing")
    }

    @Test func rejectingTheWindowPlanKeepsTheGrants() throws {
        let world = try Self.world()
        for user in ["user0", "user1", "user2"] { _ = try Self.delete(user, in: world) }
        let held = try #require(try world.heldPlans().first)
        _ = try world.reject(planID: held.plan.id, actor: .operator("root"))
        #expect(grants(of: "user2", in: world) == 2)
        #expect(try world.identity("user2")?.status == .active)
    }

    @Test func heldStepsStayHeldPastTheWindowAndTheSourceKeepsCollecting() throws {
        let world = try Self.world()
        for user in ["user0", "user1", "user2"] { _ = try Self.delete(user, in: world) }
        world.advance(by: 601)
        // The window is empty again, but the source's earlier changes still wait: this one joins them.
        let later = try Self.delete("user3", in: world)
        #expect(later.status == .held)
        #expect(try world.heldPlans().first?.plan.revocations == 4)
        #expect(grants(of: "user3", in: world) == 2)
        // A change that revokes nothing still applies.
        let joiner = try world.applyDirectoryEntry(
            Events.ldap("newbie", version: 9, groups: ["support"], department: "Support"), source: .ldap, mode: "syncrepl")
        #expect(joiner.status == .applied)
        #expect(grants(of: "newbie", in: world) == 2)
    }

    @Test func theWindowEmptiesWithTimeWhenNothingWaits() throws {
        let world = try Self.world()
        for user in ["user0", "user1"] { #expect(try Self.delete(user, in: world).status == .applied) }
        world.advance(by: 600)
        #expect(try Self.delete("user2", in: world).status == .applied)
        #expect(try Self.delete("user3", in: world).status == .applied)
        #expect(try Self.delete("user4", in: world).status == .held)
    }

    @Test func explicitLeaversPastTheBudgetApplyAndAreFlagged() throws {
        let world = try Self.world()
        var outcomes: [EventOutcome] = []
        for index in 0..<4 {
            outcomes.append(try world.submit(
                Events.hr("evt-leaver-\(index)", .leaver, employeeNumber: "\(5000 + index)", at: index)))
        }
        #expect(outcomes.map(\.status) == [.applied, .applied, .applied, .applied])
        #expect(outcomes.map(\.revoked) == [2, 2, 2, 2])
        #expect(try world.heldPlans().isEmpty)
        let flagged = world.memory.audit.filter { $0.action == .safetyWindowExceeded }
        #expect(flagged.map { $0.fields["event"] } == ["evt-leaver-2", "evt-leaver-3"])
        #expect(flagged.first?.fields["source"] == "hr")
        #expect(flagged.first?.fields["reason"]?.hasPrefix("hr revoked 4 grants within 10m; 2 more would make 6") == true)
        #expect(try world.reads.revocationWindow(.hr)?.revocations == 8, "explicit leavers count in the window")
        #expect(try world.reads.revocationWindow(.ldap) == nil, "each source has its own window")
    }

    @Test func aCompleteReadCountsInTheWindowAndIsHeldPastIt() throws {
        let world = try Self.world()
        for user in ["user0", "user1"] { _ = try Self.delete(user, in: world) }
        // Everyone but user2 listed: one read that drops one person (2 revocations) past the 4 counted.
        let listed = ["boss", "jdoe", "mkhan", "user3", "user4", "user5"]
        let users = try listed.map { try world.identity($0)!.sources[.ldap]! }
        let outcome = try world.applySnapshot(DirectorySnapshot(source: .ldap, users: users, mode: "poll"))
        guard case .held(let plan) = outcome else { Issue.record("expected held, got \(outcome)"); return }
        #expect(plan.held?.hasPrefix("ldap revoked 4 grants within 10m") == true)
        #expect(grants(of: "user2", in: world) == 2)
    }

    @Test func operatorChangesAndReloadsDoNotCount() throws {
        let world = try Self.world()
        let relaxed = SafetyLimits(maxRevocationsPerRun: 100, maxRevocationRatio: 1, minGrantsForRatio: 1_000_000, window: 600)
        _ = try world.reload(EngineConfiguration(policySet: SafetyTests.withoutSupport, safety: relaxed), actor: .operator("root"))
        #expect(world.grantLines().filter { $0.contains("support-copilot") }.isEmpty)
        #expect(try world.reads.revocationWindow(.ldap) == nil)
    }
}

/// The revocation windows through the engine and SQLite: a restart, and the check index.
@Suite struct SafetyWindowEngineTests {
    /// Six support staff (user0…user5), two copilot grants each, with the check index loaded.
    static func engineWorld() async throws -> World {
        let world = try World(safety: SafetyWindowTests.safety)
        try await world.engine.loadIndex()
        try await SafetyTests.seedStaff(world, count: 6)
        return world
    }

    static func delete(_ user: String, in world: World, engine: Engine? = nil) async throws -> EventOutcome {
        try await (engine ?? world.engine).applyDirectoryDeletion(externalId: "uuid-\(user)", source: .ldap, mode: "syncrepl")
    }

    func grants(of user: String, in world: World) async throws -> Int {
        try await world.grantLines().filter { $0.hasPrefix("\(user) ") }.count
    }

    /// While a window plan waits, what the check index allows stays as the store has it.
    @Test func heldDeletionsLeaveTheCheckIndexAllowing() async throws {
        let world = try await Self.engineWorld()
        for user in ["user0", "user1", "user2"] { _ = try await Self.delete(user, in: world) }
        #expect(try await world.store.plans(status: .held).count == 1)
        #expect(world.engine.index.decide(CheckRequest(subject: "user2", agent: "support-copilot", scope: "tickets:read", resource: "zendesk:queue/Support")).allowed)
        #expect(!world.engine.index.decide(CheckRequest(subject: "user1", agent: "support-copilot", scope: "tickets:read", resource: "zendesk:queue/Support")).allowed)
    }

    @Test func aRestartKeepsTheWindow() async throws {
        let world = try await Self.engineWorld()
        for user in ["user0", "user1"] { _ = try await Self.delete(user, in: world) }
        // A new store and engine over the same file, as after a restart of the daemon.
        let store = try SQLiteStateStore(path: world.folder.appendingPathComponent("tether.db").path)
        let restarted = Engine(
            store: store, configuration: EngineConfiguration(policySet: Fixtures.policySet, safety: SafetyWindowTests.safety), clock: world.clock)
        try await restarted.loadIndex()
        #expect(try await Self.delete("user2", in: world, engine: restarted).status == .held)
        #expect(try await grants(of: "user2", in: world) == 2)
    }

}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var out: [T] = []
        for element in self { out.append(try await transform(element)) }
        return out
    }
}

/// Several events decided and committed as one unit (a SCIM group's members), decided over memory.
@Suite struct SafetyWindowBatchTests {
    static func movers(_ users: Range<Int>) -> [LifecycleEvent] {
        users.map { index in
            LifecycleEvent(
                id: "scim-\(index)", source: .scim, kind: .mover, occurredAt: Date(timeIntervalSince1970: 1_795_867_200),
                facts: IdentityFacts(
                    externalId: "s-user\(index)", userName: "user\(index)", employeeNumber: "\(5000 + index)",
                    department: "Legal", version: "2026-11-28T12:00:00.000000Z"))
        }
    }

    @Test func aBatchPastTheBudgetHoldsEveryChangePastItInOnePlan() throws {
        let world = try SafetyWindowTests.world()
        let outcomes = try world.submit(Self.movers(0..<5))
        #expect(outcomes.map(\.status) == [.applied, .applied, .held, .held, .held])
        let held = try world.heldPlans()
        #expect(held.count == 1)
        #expect(held.first?.plan.revocations == 6)
        #expect(Set(held.first?.pendingIdentities.map(\.userName) ?? []) == ["user2", "user3", "user4"])
        #expect(try world.reads.revocationWindow(.scim)?.revocations == 4)
    }

    /// The ratio's base is the grants before the window: a batch's own revocations, not yet
    /// in the store's count, do not inflate it.
    @Test func aBatchBelowMinGrantsForRatioIsNotMeasuredByRatio() throws {
        let safety = SafetyLimits(maxRevocationsPerRun: 500, maxRevocationRatio: 0.2, minGrantsForRatio: 16, window: 600)
        let world = DecisionWorld(safety: safety)
        try SafetyTests.seedStaff(world, count: 6)
        // 12 copilot grants and the ledger bot's: 13 in all, below 16.
        let outcomes = try world.submit(Self.movers(0..<6))
        #expect(outcomes.allSatisfy { $0.status == .applied }, "\(outcomes.map(\.status))")
    }
}
