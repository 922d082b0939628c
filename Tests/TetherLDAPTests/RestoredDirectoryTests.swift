import Foundation
import SlapdHarness
import TetherConfig
import TetherCore
@testable import TetherLDAP
import TetherStore
import Testing

/// A directory restored from a backup, or one that lost its latest writes in a crash, is
/// behind the resume point Tether holds. Tether drops the resume point, says why, and reads
/// everything again through the safety gates, instead of failing to resume for ever.
@Suite("LDAP directory behind Tether's resume point")
struct RestoredDirectoryTests {
    /// A person of the fixture's shape who is in the support group's queue.
    static func newcomer(_ uid: String, number: Int) -> String {
        Fixture.person(uid, ou: "sales", department: "Support", number: number)
    }

    /// Tether following `slapd` by syncrepl at most two revocations a run, with the
    /// initial grants applied, and a backup of the directory as it is then.
    static func followedWithBackup(_ slapd: Slapd) async throws -> (world: World, backup: String) {
        let world = try World(slapd: slapd, changeDetection: .syncrepl, safety: SafetyLimits(maxRevocationsPerRun: 2))
        // Only the refused cookie may cause a complete read in these tests.
        world.configuration.fullScanInterval = .seconds(3600)
        world.start()
        try await world.waitForGrants(Fixture.initialGrants, "initial grants")
        let backup = try await slapd.backup()
        #expect(backup.contains("contextCSN:"))
        return (world, backup)
    }

    @Test("syncrepl: a directory restored from an older backup is read again in full, then followed")
    func restoredFromBackup() async throws {
        let slapd = try await Slapd.start(ldif: Fixture.ldif)
        defer { slapd.destroy() }
        let (world, backup) = try await Self.followedWithBackup(slapd)
        // After the backup: bob joins support, and Tether's cookie moves past the backup.
        var steps = LifecycleSteps(world: world, directory: slapd)
        try await steps.bobJoinsSupport()
        var grants = steps.grants

        world.events.clear()
        let recovered = try await world.audit("source.recovered").count
        try await slapd.restore(backup)
        // The restore lost bob's membership: the complete refresh revokes what it granted.
        grants.remove("bob support-copilot tickets:read zendesk:queue/Success")
        try await world.eventually("source.recovered audited") { try await world.audit("source.recovered").count > recovered }
        try await world.waitForGrants(grants, "the restored directory read in full")
        let degraded = try #require(try await world.audit("source.degraded").last)
        let reason = degraded["reason"] ?? ""
        #expect(reason.contains("refused to resume from Tether's syncrepl cookie"), "\(reason)")
        #expect(reason.contains("consumer state is newer than provider"), "the server's own words: \(reason)")
        #expect(try await world.store.sourceState(.ldap)?.health == .ok)
        let refreshed = world.events.all.contains { event in
            if case .refreshCompleted("users", _, fromCookie: false) = event { return true }
            return false
        }
        #expect(refreshed, "the refresh after the restore started without a cookie")

        // A later leaver in the restored directory reaches Tether.
        try slapd.modify("""
            dn: uid=alice,ou=sales,\(Fixture.people)
            changetype: delete
            """)
        grants.remove("alice support-copilot tickets:read zendesk:queue/Support")
        try await world.waitForGrants(grants, "alice deleted after the restore")
        #expect(try await world.identity("alice")?.status == .terminated)
        await world.stop()
    }

    @Test("syncrepl: a restore that lost many people is held by the safety gates, not revoked")
    func restoreThatLostPeopleIsHeld() async throws {
        let slapd = try await Slapd.start(ldif: Fixture.ldif)
        defer { slapd.destroy() }
        let (world, backup) = try await Self.followedWithBackup(slapd)
        var grants = Fixture.initialGrants
        // Three people join after the backup, each granted the support queue.
        let newcomers = ["erin", "frank", "gina"]
        try slapd.add(newcomers.enumerated().map { Self.newcomer($1, number: 2001 + $0) }.joined(separator: "\n"))
        try slapd.modify("""
            dn: cn=support,\(Fixture.groups)
            changetype: modify
            add: member
            \(newcomers.map { "member: uid=\($0),ou=sales,\(Fixture.people)" }.joined(separator: "\n"))
            """)
        for name in newcomers { grants.insert("\(name) support-copilot tickets:read zendesk:queue/Support") }
        try await world.waitForGrants(grants, "three newcomers granted")

        let recovered = try await world.audit("source.recovered").count
        try await slapd.restore(backup)
        try await world.eventually("a held plan") { try await !world.store.plans(status: .held).isEmpty }
        try await world.eventually("source.recovered audited") { try await world.audit("source.recovered").count > recovered }
        let reason = try await world.audit("source.degraded").last?["reason"] ?? ""
        #expect(reason.contains("refused to resume"), "\(reason)")
        #expect(try await world.grants() == grants, "nothing revoked while the plan is held")
        #expect(try await world.store.identityCounts()[.terminated] ?? 0 == 0)
        #expect(try await world.audit("grant.revoked").isEmpty)
        await world.stop()
    }
}

/// The parts of following a directory that read what a server sends: they must not take
/// garbage for a meaning that deletes people, nor trap on numbers out of range.
@Suite("LDAP resume points: Sync Info and USN values")
struct ResumePointTests {
    @Test("a Sync Info message that cannot be read is never a refreshPresent")
    func syncInfo() {
        #expect(SyncInfoKind([0xA2, 0x00]) == .refreshPresent)
        #expect(SyncInfoKind([0xA1, 0x03, 0x01, 0x01, 0xFF]) == .refreshDelete)
        #expect(SyncInfoKind([0xA2, 0x07, 0x04, 0x02, 0x61, 0x62, 0x01, 0x01, 0x00]) == .refreshPresent)
        #expect(SyncInfoKind([0xA2, 0x81, 0x02, 0x04, 0x00]) == .refreshPresent, "long-form length")
        #expect(SyncInfoKind([0x80, 0x02, 0x61, 0x62]) == .newCookie)
        #expect(SyncInfoKind([0xA3, 0x00]) == .syncIdSet)
        let garbage: [[UInt8]] = [
            [], [0xA2], [0x00, 0x00], [0xFF, 0xFF], [0xA5, 0x00],
            [0xA2, 0x05, 0x00],  // length beyond the bytes
            [0xA2, 0x00, 0x00],  // trailing bytes
            [0xA2, 0x02, 0x02, 0x00],  // an INTEGER where a cookie or a boolean belongs
            [0xA2, 0x03, 0x01, 0x02, 0x00],  // a two-byte boolean
            [0xA2, 0x06, 0x01, 0x01, 0x00, 0x04, 0x01, 0x61],  // the cookie after refreshDone
            [0xA2, 0x84, 0xFF, 0xFF, 0xFF, 0xFF],  // a length of 4 GiB
            [0xA2, 0x85, 0x01, 0x01, 0x01, 0x01, 0x01],  // a length of five bytes
        ]
        for bytes in garbage {
            #expect(SyncInfoKind(bytes) == nil, "\(bytes)")
        }
    }

    @Test("USN values that overflow, are negative or garbage are refused without trapping")
    func usnParsing() {
        #expect(USNWatermark.parse("12345") == 12345)
        #expect(USNWatermark.parse("9223372036854775807") == Int64.max)
        for text in ["9223372036854775808", "18446744073709551616", "-5", "+5", "12a", "", " 12", "1e9", "٣"] {
            #expect(USNWatermark.parse(text) == nil, "\(text)")
        }
        #expect(USNWatermark.parse(nil) == nil)

        let mapper = EntryMapper(LDAPConfiguration(url: "ldap://x", users: LDAPUsersConfiguration(base: "dc=x")))
        let entry = LDAPEntry(dn: "uid=a,dc=x", attributes: ["entryUUID": ["u-1"], "uSNChanged": ["99999999999999999999"]])
        #expect(mapper.user(entry)?.usnChanged == nil)
    }

    @Test("Active Directory: a changed invocationId or a USN that went back drops the watermark")
    func usnDecision() {
        let watermark = USNWatermark(usn: 100, invocationId: "guid-a")
        #expect(watermark.next(observedUSN: "150", observedInvocationId: "guid-a")
            == .poll(from: "101", next: USNWatermark(usn: 150, invocationId: "guid-a")))
        #expect(watermark.next(observedUSN: "100", observedInvocationId: nil)
            == .poll(from: "101", next: USNWatermark(usn: 100, invocationId: "guid-a")), "an unreadable invocationId keeps the last one")

        guard case .completeRead(let restored) = watermark.next(observedUSN: "150", observedInvocationId: "guid-b") else {
            Issue.record("a new invocationId must drop the watermark")
            return
        }
        #expect(restored.contains("invocationId changed from guid-a to guid-b"))
        guard case .completeRead(let back) = watermark.next(observedUSN: "90", observedInvocationId: "guid-a") else {
            Issue.record("a USN lower than the watermark must drop it")
            return
        }
        #expect(back.contains("went back from 100 to 90"))
        for garbage in ["-1", "abc", "99999999999999999999", nil] as [String?] {
            guard case .completeRead = watermark.next(observedUSN: garbage, observedInvocationId: "guid-a") else {
                Issue.record("an unreadable highestCommittedUSN (\(garbage ?? "none")) must drop the watermark")
                continue
            }
        }
        // At the largest USN, the next one cannot be counted: read everything instead of trapping.
        let top = USNWatermark(usn: .max, invocationId: nil)
        guard case .completeRead = top.next(observedUSN: "9223372036854775807", observedInvocationId: nil) else {
            Issue.record("a watermark at Int64.max must not be incremented")
            return
        }
    }
}
