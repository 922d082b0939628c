import Foundation
import Testing
import TetherCore
import TetherEngine
import TetherStore

/// A version from the future would make every later event for its person stale, leavers too.
/// Decided by the pure decision step over memory (``DecisionWorld``).
@Suite struct FutureVersionTests {
    static func hr(_ id: String, _ kind: EventKind, at time: Date, department: String? = "Support") -> LifecycleEvent {
        LifecycleEvent(
            id: id, source: .hr, kind: kind, occurredAt: time,
            facts: IdentityFacts(
                externalId: "E1001", userName: "alice", employeeNumber: "1001", department: department,
                status: kind == .leaver ? .terminated : kind == .joiner ? .active : nil, version: Timestamp.version(time)))
    }

    @Test func aPushedEventFromTheFutureIsRefusedAndTheLeaverAfterItApplies() throws {
        let world = DecisionWorld()
        try world.seedSponsors()
        let now = world.now
        _ = try world.submit(Self.hr("evt-1", .joiner, at: now))
        #expect(throws: EngineError.self) {
            _ = try world.submit(Self.hr("evt-2", .mover, at: now.addingTimeInterval(86_400 * 365), department: "Legal"))
        }
        #expect(try world.reads.eventStatus(id: "evt-2") == nil)
        #expect(try world.identity("alice")?.department == "Support")
        // A scheduled leaver states its occurredAt too: the same bound.
        var scheduled = Self.hr("evt-3", .leaver, at: now.addingTimeInterval(301))
        scheduled.effectiveAt = now.addingTimeInterval(3_600)
        #expect(throws: EngineError.self) { _ = try world.submit(scheduled) }
        world.advance(by: 60)
        let leaver = try world.submit(Self.hr("evt-4", .leaver, at: world.now))
        #expect(leaver.status == .applied)
        #expect(try world.identity("alice")?.status == .terminated)
    }

    @Test func aDirectoryVersionFromTheFutureIsReplacedByTheTimeItWasReceived() throws {
        let world = DecisionWorld()
        try world.seedSponsors()
        var ahead = Events.ldap("alice", version: 1, groups: ["support"], department: "Support")
        ahead.version = "2099-01-01T00:00:00.000000Z#000000#000#000000"
        let applied = try world.applyDirectoryEntry(ahead, source: .ldap, mode: "syncrepl")
        #expect(applied.status == .applied)
        #expect(try world.identity("alice")?.sources[.ldap]?.version == Timestamp.version(world.now))
        // The directory's next change, dated by a sane clock a minute later, is not stale.
        world.advance(by: 60)
        var moved = Events.ldap("alice", version: 1, groups: [], department: "Support")
        moved.version = Timestamp.version(world.now) + "#000000#000#000000"
        let next = try world.applyDirectoryEntry(moved, source: .ldap, mode: "syncrepl")
        #expect(next.status == .applied)
        #expect(world.grantLines().filter { $0.hasPrefix("alice ") }.isEmpty)
    }

    /// State written before future versions were refused: the stored version is ignored.
    @Test func aStoredVersionFromTheFutureMakesNoLaterEventStale() {
        let now = Date(timeIntervalSince1970: 1_795_867_200)
        let poisoned = Identity(
            id: "i_1", userName: "alice", status: .active,
            sources: [.hr: IdentityFacts(externalId: "E1", userName: "alice", version: "2099-01-01T00:00:00.000000Z")])
        let leaver = Self.hr("evt-9", .leaver, at: now)
        let lifecycle = Lifecycle()
        let ceiling = Timestamp.versionCeiling(now: now, tolerance: 300)
        guard case .apply(let identity, let transition, _) = lifecycle.decide(leaver, existing: poisoned, newID: "i_x", ceiling: ceiling)
        else { Issue.record("the leaver was stale"); return }
        #expect(transition == .terminated)
        #expect(identity.status == .terminated)
        // Without a ceiling (and for an honest older version) staleness holds as before.
        #expect(lifecycle.decide(leaver, existing: poisoned, newID: "i_x") == .stale(identity: "i_1", lastVersion: "2099-01-01T00:00:00.000000Z"))
    }
}
