import Foundation
import Testing
import TetherCore
import TetherEngine
import TetherStore

/// The decision step on its own: a function of the work, of what it reads through
/// ``DecisionReads``, of the configuration and of the time. Taken here from reads held in
/// memory, with no store, and compared with what the engine commits through SQLite.
@Suite struct DeciderTests {
    static let now = Date(timeIntervalSince1970: 1_795_867_200)

    static func decider(_ world: World, safety: SafetyLimits? = nil) -> Decider {
        var configuration = EngineConfiguration(
            policySet: Fixtures.policySet, lifecycle: Lifecycle(precedence: [.hr, .scim, .ldap]),
            safety: SafetyLimits(maxRevocationsPerRun: 10_000, maxRevocationRatio: 1, minGrantsForRatio: 1_000_000))
        if let safety { configuration.safety = safety }
        return Decider(configuration: configuration, knownGrantCount: nil)
    }

    static func work(_ event: LifecycleEvent, staged: Staged = Staged()) -> EventWork {
        EventWork(
            event: event.digested(), actor: .source(event.source), receivedAt: now, now: now, checkDuplicate: true,
            mayBeScheduled: true, staged: staged)
    }

    @Test func aLeaverDecidedFromReadsInMemoryIsWhatTheEngineCommits() async throws {
        let world = try World()
        try await SafetyTests.seedStaff(world, count: 2)
        let reads = try await MemoryReads.copy(of: world.store)
        let leaver = Events.hr("evt-leave", .leaver, employeeNumber: "5000", at: 10)

        let decision = try Self.decider(world).decide(Self.work(leaver), reads: reads)
        let outcome = try await world.engine.submit(leaver)

        #expect(decision.outcome == outcome)
        #expect(outcome.status == .applied && outcome.revoked == 2)
        let changeset = try #require(decision.changeset)
        #expect(changeset.identities.map(\.userName) == ["user0"])
        #expect(changeset.identities.first?.status == .terminated)
        #expect(changeset.event?.status == .applied)
        // The audit records the engine committed are the ones decided, field for field.
        let committed = try await world.store.auditRecords(AuditQuery()).suffix(changeset.audit.count)
        #expect(committed.map(\.action) == changeset.audit.map(\.action.rawValue))
        #expect(committed.map(\.action) == ["identity.terminated", "grant.revoked", "grant.revoked"])
        for (record, entry) in zip(committed, changeset.audit) {
            #expect(record.values["grant"]?.string == entry.fields["grant"] && record.values["reason"]?.string == entry.fields["reason"])
        }
        // Deciding reads: it wrote nothing, and the same reads decide the same way again.
        let again = try Self.decider(world).decide(Self.work(leaver), reads: reads)
        #expect(again.outcome == decision.outcome && again.changeset?.audit == changeset.audit)
    }

    @Test func aSeenEventIsADuplicateAndAnotherBodyUnderItsIdIsRefused() async throws {
        let world = try World()
        try await SafetyTests.seedStaff(world, count: 1)
        let leaver = Events.hr("evt-leave", .leaver, employeeNumber: "5000", at: 10)
        _ = try await world.engine.submit(leaver)
        let reads = try await MemoryReads.copy(of: world.store, events: ["evt-leave"])

        let retry = try Self.decider(world).decide(Self.work(leaver), reads: reads)
        #expect(retry.outcome.status == .duplicate)
        #expect(retry.changeset == nil, "a retry writes nothing")

        var altered = leaver
        altered.facts.department = "Elsewhere"
        #expect(throws: EngineError.self) { try Self.decider(world).decide(Self.work(altered), reads: reads) }
    }

    /// In a batch, a later decision counts the revocations of earlier ones not yet
    /// committed: what they leave behind is derived from their changesets alone.
    @Test func aBatchCountsTheRevocationsOfItsEarlierDecisionsInTheWindow() async throws {
        let world = try World()
        try await SafetyTests.seedStaff(world, count: 3)
        let reads = try await MemoryReads.copy(of: world.store)
        // Three revocations per source within ten minutes; each deletion revokes two.
        let decider = Self.decider(world, safety: SafetyLimits(
            maxRevocationsPerRun: 3, maxRevocationRatio: 1, minGrantsForRatio: 1_000_000, window: 600))
        func deletion(_ user: String) throws -> EventWork {
            let identity = try #require(try reads.identity(userName: user))
            var facts = try #require(identity.sources[.ldap])
            facts.status = .terminated
            let event = LifecycleEvent(
                id: "ldap:uuid-\(user):deleted", source: .ldap, kind: .leaver, occurredAt: Self.now, facts: facts,
                isExplicitLeaver: false)
            return EventWork(event: event, actor: .source(.ldap), receivedAt: Self.now, now: Self.now, target: identity)
        }

        let first = try decider.decide(try deletion("user0"), reads: reads)
        #expect(first.outcome.status == .applied)
        #expect(first.changeset?.windows[.ldap]?.revocations == 2)

        // Alone, the second deletion fits (2 ≤ 3); after the first, it would make 4.
        #expect(try decider.decide(try deletion("user1"), reads: reads).outcome.status == .applied)
        var staged = Staged()
        staged.absorb(try #require(first.changeset))
        #expect(staged.grantChange == -2)
        var second = try deletion("user1")
        second.staged = staged
        let held = try decider.decide(second, reads: reads)
        #expect(held.outcome.status == .held)
        #expect(held.outcome.plan?.scope == .window(.ldap))
        #expect(held.changeset?.identities.isEmpty == true, "nothing of a held change applies")

        // The third joins the window plan the second left behind, though nothing is committed.
        staged.absorb(try #require(held.changeset))
        var third = try deletion("user2")
        third.staged = staged
        let joined = try decider.decide(third, reads: reads)
        #expect(joined.outcome.status == .held)
        #expect(Set(joined.changeset?.pendingIdentities.map(\.userName) ?? []) == ["user1", "user2"])
    }

    /// A full reconciliation is decided from one read too: the same plan from reads held in
    /// memory as from the store, and a policy change's revocations come out of it.
    @Test func aFullReconciliationDecidedFromReadsInMemoryIsTheEngines() async throws {
        let world = try World()
        try await SafetyTests.seedStaff(world, count: 3)
        let reads = try await MemoryReads.copy(of: world.store)
        let narrowed = Decider(configuration: EngineConfiguration(policySet: SafetyTests.withoutSupport))

        let decision = try narrowed.reconcile(origin: .other, actor: .policy, dryRun: false, now: Self.now, reads: reads)
        _ = try await world.engine.reload(EngineConfiguration(policySet: SafetyTests.withoutSupport), actor: .policy)

        guard case .applied(let plan) = decision.outcome else { Issue.record("expected an applied plan, got \(decision.outcome)"); return }
        #expect(plan.transcript.count == 6)
        #expect(plan.transcript.allSatisfy { $0.hasPrefix("revoke user") && $0.contains("support-copilot") })
        #expect(try await world.grantLines().filter { $0.contains("support-copilot") }.isEmpty)
        let replanned = try narrowed.reconcile(origin: .other, actor: .policy, dryRun: true, now: Self.now, reads: reads)
        #expect(replanned.outcome == .planned(plan), "deciding wrote nothing: the same reads give the same plan")
        #expect(replanned.changeset == nil)
    }

    /// A reconciliation called off stops between identities, with nothing decided.
    @Test func aCancelledReconciliationThrowsAndDecidesNothing() async throws {
        let world = try World()
        try await SafetyTests.seedStaff(world, count: 3)
        let reads = try await MemoryReads.copy(of: world.store)
        #expect(throws: CancellationError.self) {
            try Self.decider(world).reconcile(
                origin: .other, actor: .policy, dryRun: false, now: Self.now, reads: reads, cancelled: { true })
        }
    }
}
