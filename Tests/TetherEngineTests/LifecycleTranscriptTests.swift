import Foundation
import Testing
import TetherCore
import TetherEngine
import TetherStore

/// Joiner, mover and leaver stories, asserted as the transcripts of the plans they produce:
/// decided by the pure decision step over memory (``DecisionWorld``).
@Suite struct LifecycleTranscriptTests {
    @Test func joinerReceivesWhatPolicyDerives() throws {
        let world = DecisionWorld()
        try world.seedSponsors()
        let outcome = try world.submit(Events.ldapEvent(
            Events.ldap("alice", version: 2, groups: ["support"], department: "Support")))
        #expect(outcome.status == .applied)
        #expect(outcome.transition == .joined)
        #expect(outcome.plan?.transcript == [
            "grant alice support-copilot tickets:read zendesk:queue/Support [support-tickets]",
            "grant alice support-copilot tickets:write zendesk:queue/Support [support-tickets]",
        ])
        #expect(world.auditActions().suffix(3) == ["identity.joined", "grant.granted", "grant.granted"])
    }

    @Test func moverWhoLosesTheGroupLosesTheGrants() throws {
        let world = DecisionWorld()
        try world.seedSponsors()
        _ = try world.submit(Events.ldapEvent(Events.ldap("alice", version: 2, groups: ["support"], department: "Support")))
        let outcome = try world.submit(Events.ldapEvent(Events.ldap("alice", version: 3, department: "Support")))
        #expect(outcome.transition == .moved)
        #expect(outcome.plan?.transcript == [
            "revoke alice support-copilot tickets:read zendesk:queue/Support (policy support-tickets no longer matches: all(memberOf support, department in [Support, Success]))",
            "revoke alice support-copilot tickets:write zendesk:queue/Support (policy support-tickets no longer matches: all(memberOf support, department in [Support, Success]))",
        ])
    }

    @Test func moverWhoseDepartmentChangesFollowsTheTemplate() throws {
        let world = DecisionWorld()
        try world.seedSponsors()
        _ = try world.submit(Events.ldapEvent(Events.ldap("alice", version: 2, groups: ["support"], department: "Support")))
        let outcome = try world.submit(Events.ldapEvent(
            Events.ldap("alice", version: 3, groups: ["support"], department: "Success")))
        #expect(outcome.plan?.transcript == [
            "revoke alice support-copilot tickets:read zendesk:queue/Support (policy support-tickets no longer derives this grant)",
            "revoke alice support-copilot tickets:write zendesk:queue/Support (policy support-tickets no longer derives this grant)",
            "grant alice support-copilot tickets:read zendesk:queue/Success [support-tickets]",
            "grant alice support-copilot tickets:write zendesk:queue/Success [support-tickets]",
        ])
    }

    @Test func aRenameKeepsTheIdentityAndMovesItsGrants() throws {
        let world = DecisionWorld()
        try world.seedSponsors()
        let joined = try world.submit(Events.ldapEvent(
            Events.ldap("alice", version: 2, groups: ["support"], department: "Support")))
        // Same entryUUID, new DN and uid: a mover of the same identity, not a leaver and a joiner.
        var renamed = Events.ldap("alice", version: 3, groups: ["support"], department: "Support")
        renamed.userName = "alice.smith"
        let outcome = try world.submit(Events.ldapEvent(renamed))
        #expect(outcome.identity == joined.identity)
        #expect(outcome.transition == .moved)
        #expect(outcome.plan?.transcript.map { String($0.prefix(6)) } == ["revoke", "revoke", "grant ", "grant "])
        #expect(world.grantLines().filter { $0.hasPrefix("alice") } == [
            "alice.smith support-copilot tickets:read zendesk:queue/Support",
            "alice.smith support-copilot tickets:write zendesk:queue/Support",
        ])
    }

    @Test func aDirectoryMoveWithUnchangedFactsChangesNothing() throws {
        let world = DecisionWorld()
        try world.seedSponsors()
        let joined = try world.submit(Events.ldapEvent(
            Events.ldap("alice", version: 2, groups: ["support"], department: "Support")))
        // A move to another OU bumps the entry's version but no fact a policy reads.
        let moved = try world.submit(Events.ldapEvent(
            Events.ldap("alice", version: 3, groups: ["support"], department: "Support")))
        #expect(moved.identity == joined.identity)
        #expect(moved.transition == .unchanged)
        #expect(moved.plan?.isEmpty == true)
        #expect(world.grantLines().filter { $0.hasPrefix("alice ") }.count == 2)
    }

    @Test func terminatedLeaverLosesEverything() throws {
        let world = DecisionWorld()
        try world.seedSponsors()
        _ = try world.submit(Events.ldapEvent(Events.ldap(
            "alice", version: 2, groups: ["support"], department: "Support", employeeNumber: "1001")))
        let outcome = try world.submit(Events.hr("evt-1", .leaver, employeeNumber: "1001", at: 10))
        #expect(outcome.status == .applied)
        #expect(outcome.transition == .terminated)
        #expect(outcome.revoked == 2)
        #expect(outcome.plan?.transcript == [
            "revoke alice support-copilot tickets:read zendesk:queue/Support (identity terminated)",
            "revoke alice support-copilot tickets:write zendesk:queue/Support (identity terminated)",
        ])
        #expect(try world.identity("alice")?.status == .terminated)
    }

    @Test func suspendedIdentityLosesGrantsAndRegainsThemWhenReEnabled() throws {
        let world = DecisionWorld()
        try world.seedSponsors()
        _ = try world.submit(Events.ldapEvent(Events.ldap("alice", version: 2, groups: ["support"], department: "Support")))
        let locked = try world.submit(Events.ldapEvent(
            Events.ldap("alice", version: 3, groups: ["support"], department: "Support", status: .suspended)))
        #expect(locked.transition == .suspended)
        #expect(locked.plan?.transcript.allSatisfy { $0.hasSuffix("(identity suspended)") } == true)
        #expect(locked.revoked == 2)
        let unlocked = try world.submit(Events.ldapEvent(
            Events.ldap("alice", version: 4, groups: ["support"], department: "Support")))
        #expect(unlocked.transition == .reactivated)
        #expect(unlocked.granted == 2)
    }

    @Test func hrLeaverIsNotUndoneByALaggingDirectory() throws {
        let world = DecisionWorld()
        try world.seedSponsors()
        _ = try world.submit(Events.ldapEvent(Events.ldap(
            "alice", version: 2, groups: ["support"], department: "Support", employeeNumber: "1001")))
        _ = try world.submit(Events.hr("evt-1", .leaver, employeeNumber: "1001", at: 10))
        // The directory has not caught up: it still shows alice enabled, with a newer entryCSN.
        let lagging = try world.submit(Events.ldapEvent(Events.ldap(
            "alice", version: 30, groups: ["support"], department: "Support", employeeNumber: "1001")))
        #expect(lagging.status == .applied)
        #expect(lagging.plan?.isEmpty == true)
        #expect(try world.identity("alice")?.status == .terminated)
        let lags = world.lags()
        #expect(lags.map(\.userName) == ["alice"])
        #expect(lags.first?.source == .ldap)
        #expect(lags.first?.statusSource == .hr)
        #expect(world.grantLines().filter { $0.hasPrefix("alice ") }.isEmpty)
    }

    @Test func rehireByHigherPrecedenceSourceRestoresGrants() throws {
        let world = DecisionWorld()
        try world.seedSponsors()
        _ = try world.submit(Events.ldapEvent(Events.ldap(
            "alice", version: 2, groups: ["support"], department: "Support", employeeNumber: "1001")))
        _ = try world.submit(Events.hr("evt-1", .leaver, employeeNumber: "1001", at: 10))
        let rehire = try world.submit(Events.hr("evt-2", .joiner, employeeNumber: "1001", at: 20))
        #expect(rehire.transition == .reactivated)
        #expect(rehire.plan?.transcript == [
            "grant alice support-copilot tickets:read zendesk:queue/Support [support-tickets]",
            "grant alice support-copilot tickets:write zendesk:queue/Support [support-tickets]",
        ])
        #expect(world.lags().isEmpty)
    }

    @Test func staleAndDuplicateEventsChangeNothing() throws {
        let world = DecisionWorld()
        try world.seedSponsors()
        _ = try world.submit(Events.ldapEvent(Events.ldap(
            "alice", version: 2, groups: ["support"], department: "Support", employeeNumber: "1001")))
        _ = try world.submit(Events.hr("evt-2", .mover, employeeNumber: "1001", at: 20, department: "Support"))
        let before = world.grantLines()

        let duplicate = try world.submit(Events.hr("evt-2", .mover, employeeNumber: "1001", at: 20, department: "Support"))
        #expect(duplicate.status == .duplicate)
        // The same id with another body is not a retry: refused, and nothing changes.
        #expect(throws: EngineError(.conflictingEvent, "event id evt-2 was received before with a different body; an id names one event, so send a new change under a new id")) {
            _ = try world.submit(Events.hr("evt-2", .mover, employeeNumber: "1001", at: 20, department: "Legal"))
        }

        let stale = try world.submit(Events.hr("evt-1", .leaver, employeeNumber: "1001", at: 10))
        #expect(stale.status == .stale)
        #expect(world.grantLines() == before)
        #expect(try world.identity("alice")?.status == .active)
        #expect(try world.reads.eventStatus(id: "evt-1") == .stale)
        #expect(world.auditActions().last == "event.stale")
    }

    @Test func leaverForAnUnknownPersonLeavesATombstone() throws {
        let world = DecisionWorld()
        try world.seedSponsors()
        let leaver = try world.submit(Events.hr("evt-1", .leaver, employeeNumber: "2002", userName: "bob", at: 10))
        #expect(leaver.transition == .terminated)
        let tombstoneID = try #require(leaver.identity)
        let tombstone = try #require(try world.reads.identity(id: tombstoneID))
        #expect(tombstone.isTombstone)
        #expect(tombstone.status == .terminated)
        // A late joiner-era record from the directory finds the tombstone and creates nothing.
        let late = try world.submit(Events.ldapEvent(Events.ldap(
            "bob", version: 2, groups: ["support"], department: "Support", employeeNumber: "2002")))
        #expect(late.identity == leaver.identity)
        #expect(late.plan?.isEmpty == true)
        #expect(world.grantLines().filter { $0.hasPrefix("bob ") }.isEmpty)
        // And a joiner-era HR record older than the leaver is stale.
        let oldJoiner = try world.submit(Events.hr("evt-0", .joiner, employeeNumber: "2002", userName: "bob", at: 5))
        #expect(oldJoiner.status == .stale)
    }
}
