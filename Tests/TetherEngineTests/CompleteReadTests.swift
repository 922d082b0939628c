import Foundation
import Testing
import TetherCore
import TetherEngine
import TetherStore

/// A complete directory read: the people it lists as they are now, those it no longer lists
/// gone. Decided by the pure decision step over memory (``DecisionWorld``).
@Suite struct CompleteReadTests {
    /// Everyone ``SafetyTests/seedStaff(_:count:)`` seeds with two staff, as the directory lists them.
    static func everyone() -> [String: IdentityFacts] {
        var listed = [
            "boss": Events.ldap("boss", version: 1, department: "Exec"),
            "jdoe": Events.ldap("jdoe", version: 1, department: "Support"),
            "mkhan": Events.ldap("mkhan", version: 1, department: "People", title: "HR Partner", manager: "uuid-boss"),
        ]
        for index in 0..<2 {
            listed["user\(index)"] = Events.ldap(
                "user\(index)", version: 2, groups: ["support"], department: "Support", employeeNumber: "\(5000 + index)")
        }
        return listed
    }

    @Test func aReadAppliesTheChangesAndArrivalsItListsAndEndsThoseItNoLongerDoes() throws {
        let world = DecisionWorld()
        try SafetyTests.seedStaff(world, count: 2)
        var listed = Self.everyone()
        listed["user0"] = Events.ldap("user0", version: 3, department: "Support", employeeNumber: "5000")
        listed["user1"] = nil
        listed["newbie"] = Events.ldap("newbie", version: 3, groups: ["support"], department: "Success")

        let outcome = try world.applySnapshot(DirectorySnapshot(source: .ldap, users: listed.keys.sorted().map { listed[$0]! }, mode: "poll"))
        guard case .applied(let plan) = outcome else { Issue.record("expected applied, got \(outcome)"); return }
        #expect(plan.revocations == 4 && plan.grants == 2, "\(plan.transcript)")
        #expect(world.grantLines().filter { $0.hasPrefix("user") || $0.hasPrefix("newbie") } == [
            "newbie support-copilot tickets:read zendesk:queue/Success",
            "newbie support-copilot tickets:write zendesk:queue/Success",
        ])
        #expect(try world.identity("user0")?.groups.isEmpty == true)
        #expect(try world.identity("user1")?.status == .terminated)
        #expect(try world.reads.sourceState(.ldap)?.lastScanUsers == 5)
        let transitions = world.memory.audit.filter { $0.action.rawValue.hasPrefix("identity.") }.suffix(3)
        #expect(Set(transitions.map { "\($0.action.rawValue) \($0.fields["subject"] ?? "?")" }) == [
            "identity.joined newbie", "identity.moved user0", "identity.terminated user1",
        ])

        // The same read again changes nothing.
        let records = world.memory.audit.count
        let again = try world.applySnapshot(DirectorySnapshot(source: .ldap, users: listed.keys.sorted().map { listed[$0]! }, mode: "poll"))
        #expect(again.plan.isEmpty)
        #expect(world.memory.audit.count == records)
    }

    /// A read decides against a summary of each stored identity and reads whole only those it
    /// changes; one it lists unchanged is still settled when its manager arrives in the read.
    @Test func aReadResolvesTheManagerOfSomeoneItListsUnchangedWhenTheManagerArrivesInIt() throws {
        let world = DecisionWorld()
        try SafetyTests.seedStaff(world, count: 2)
        let kim = Events.ldap("kim", version: 1, department: "Support", manager: "uuid-newboss")
        try world.submit(Events.ldapEvent(kim))
        #expect(try world.identity("kim")?.manager == nil)

        // The report first, her manager after her: resolved once everyone is known.
        let listed = [kim] + Self.everyone().keys.sorted().map { Self.everyone()[$0]! }
            + [Events.ldap("newboss", version: 1, department: "Exec")]
        let outcome = try world.applySnapshot(DirectorySnapshot(source: .ldap, users: listed, mode: "poll"))
        guard case .applied = outcome else { Issue.record("expected applied, got \(outcome)"); return }
        let newboss = try #require(try world.identity("newboss"))
        #expect(try world.identity("kim")?.manager == newboss.id)
        let transitions = world.memory.audit.filter { $0.action.rawValue.hasPrefix("identity.") }.suffix(2)
        #expect(Set(transitions.map { "\($0.action.rawValue) \($0.fields["subject"] ?? "?")" }) == [
            "identity.joined newboss", "identity.moved kim",
        ])
        // Nobody else changed: the others keep their managers and get no record.
        #expect(try world.identity("mkhan")?.manager == world.identity("boss")?.id)
    }

    /// A precedence changed since the store was written: a read merges again the identities it
    /// lists unchanged, though it reads whole only those.
    @Test func aReadMergesAgainTheIdentitiesItListsUnchangedWhenThePrecedenceChanged() throws {
        let world = DecisionWorld(precedence: [.hr, .scim, .ldap])
        try SafetyTests.seedStaff(world, count: 2)
        try world.submit(Events.hr("hr-1", .joiner, employeeNumber: "5000", userName: "user0", at: 1, department: "Finance"))
        #expect(try world.identity("user0")?.department == "Finance")

        world.configuration.lifecycle = Lifecycle(precedence: [.ldap, .hr, .scim])
        let records = world.memory.audit.count
        let outcome = try world.applySnapshot(DirectorySnapshot(
            source: .ldap, users: Self.everyone().keys.sorted().map { Self.everyone()[$0]! }, mode: "poll"))
        guard case .applied = outcome else { Issue.record("expected applied, got \(outcome)"); return }
        #expect(try world.identity("user0")?.department == "Support")
        #expect(try world.identity("user1")?.department == "Support")
        let moved = world.memory.audit.dropFirst(records).filter { $0.action.rawValue.hasPrefix("identity.") }
        #expect(moved.map { "\($0.action.rawValue) \($0.fields["subject"] ?? "?")" } == ["identity.moved user0"])
    }
}
