import Foundation
import Testing
import TetherCore
import TetherEngine
import TetherStore

/// A few of the lifecycle stories end to end, through the engine and SQLite: what the store,
/// its audit chain and the check index hold after them. The stories themselves are decided
/// over memory in ``LifecycleTranscriptTests``; ``BothWorldsTests`` checks that both agree.
@Suite struct LifecycleEndToEndTests {
    /// What the store, its chain and the check index hold once an HR leaver is committed.
    @Test func aCommittedLeaverIsStoredChainedAndDenied() async throws {
        let world = try World()
        try await world.engine.loadIndex()
        try await world.seedSponsors()
        _ = try await world.engine.submit(Events.ldapEvent(Events.ldap(
            "alice", version: 2, groups: ["support"], department: "Support", employeeNumber: "1001")))
        #expect(world.engine.index.decide(CheckRequest(subject: "alice", agent: "support-copilot", scope: "tickets:read", resource: "zendesk:queue/Support")).allowed)
        #expect(try await world.engine.submit(Events.hr("evt-1", .leaver, employeeNumber: "1001", at: 10)).revoked == 2)
        #expect(try await world.store.identity(userName: "alice")?.status == .terminated)
        #expect(try await world.store.grants(subject: "alice", agent: nil).isEmpty)
        #expect(try await world.store.eventStatus(id: "evt-1") == .applied)
        let records = try await world.auditActions()
        #expect(records.suffix(3) == ["identity.terminated", "grant.revoked", "grant.revoked"])
        #expect(try await world.store.verifyAuditChain() == .intact(records: records.count))
        #expect(!world.engine.index.decide(CheckRequest(subject: "alice", agent: "support-copilot", scope: "tickets:read", resource: "zendesk:queue/Support")).allowed)
    }

    @Test func hrLeaverIsNotUndoneByALaggingDirectory() async throws {
        let world = try World()
        try await world.seedSponsors()
        _ = try await world.engine.submit(Events.ldapEvent(Events.ldap(
            "alice", version: 2, groups: ["support"], department: "Support", employeeNumber: "1001")))
        _ = try await world.engine.submit(Events.hr("evt-1", .leaver, employeeNumber: "1001", at: 10))
        // The directory has not caught up: it still shows alice enabled, with a newer entryCSN.
        let lagging = try await world.engine.submit(Events.ldapEvent(Events.ldap(
            "alice", version: 30, groups: ["support"], department: "Support", employeeNumber: "1001")))
        #expect(lagging.status == .applied)
        #expect(lagging.plan?.isEmpty == true)
        #expect(try await world.identity("alice")?.status == .terminated)
        let lags = try await world.store.directoryLags()
        #expect(lags.map(\.userName) == ["alice"])
        #expect(lags.first?.source == .ldap)
        #expect(lags.first?.statusSource == .hr)
        #expect(try await world.grantLines().filter { $0.hasPrefix("alice ") }.isEmpty)
    }

    @Test func staleAndDuplicateEventsChangeNothing() async throws {
        let world = try World()
        try await world.seedSponsors()
        _ = try await world.engine.submit(Events.ldapEvent(Events.ldap(
            "alice", version: 2, groups: ["support"], department: "Support", employeeNumber: "1001")))
        _ = try await world.engine.submit(Events.hr("evt-2", .mover, employeeNumber: "1001", at: 20, department: "Support"))
        let before = try await world.grantLines()

        let duplicate = try await world.engine.submit(Events.hr("evt-2", .mover, employeeNumber: "1001", at: 20, department: "Support"))
        #expect(duplicate.status == .duplicate)
        // The same id with another body is not a retry: refused, and nothing changes.
        await #expect(throws: EngineError(.conflictingEvent, "event id evt-2 was received before with a different body; an id names one event, so send a new change under a new id")) {
            _ = try await world.engine.submit(Events.hr("evt-2", .mover, employeeNumber: "1001", at: 20, department: "Legal"))
        }

        let stale = try await world.engine.submit(Events.hr("evt-1", .leaver, employeeNumber: "1001", at: 10))
        #expect(stale.status == .stale)
        #expect(try await world.grantLines() == before)
        #expect(try await world.identity("alice")?.status == .active)
        #expect(try await world.store.eventStatus(id: "evt-1") == .stale)
        #expect(try await world.auditActions().last == "event.stale")
    }
}
