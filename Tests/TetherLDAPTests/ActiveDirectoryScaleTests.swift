import Foundation
import SlapdHarness
import Synchronization
import TetherConfig
import TetherCore
@testable import TetherLDAP
import TetherStore
import Testing

/// Active Directory at enterprise scale: large groups read in ranges (`member;range=0-499`,
/// followed to `*`), and deletions seen within one USN poll from the tombstones in the
/// Deleted Objects container. Part of ``ActiveDirectoryTests`` (run by `scripts/test-ad`).
extension ActiveDirectoryTests {
    static let support = "CN=support,\(groups)"
    /// The people of ``largeGroupLDIF`` besides jdoe and alice: u0002 … u1999.
    static let largeGroupPeople = (2..<2_000).map { String(format: "u%04d", $0) }

    /// The sponsors, alice (with three `otherTelephone` values), and 1,998 more people in
    /// Support: a support group of 2,000 members.
    static var largeGroupLDIF: String {
        var text = """
            \(sponsorsLDIF)
            \(user("alice", number: 1003, department: "Support", manager: "jdoe"))otherTelephone: 555-0101
            otherTelephone: 555-0102
            otherTelephone: 555-0103
            """
        text += "\n\n"
        for (index, name) in largeGroupPeople.enumerated() {
            text += user(name, number: 10_000 + index, department: "Support") + "\n"
        }
        text += "dn: \(support)\nobjectClass: group\nsAMAccountName: support\n"
        text += "member: CN=jdoe,\(people)\nmember: CN=alice,\(people)\n"
        text += largeGroupPeople.map { "member: CN=\($0),\(people)\n" }.joined()
        return text
    }

    /// The grants of ``largeGroupLDIF``: the support queue for every member, the ledger bot's own.
    static var largeGroupGrants: Set<String> {
        Set((["jdoe", "alice"] + largeGroupPeople).map { "\($0) support-copilot tickets:read zendesk:queue/Support" })
            .union(["agent:ledger-bot ledger-bot ledger:read erp:ledger/*"])
    }

    @Test("a 2,000-member group read in ranges of 500: every member is granted, removing one revokes only theirs")
    func largeGroupInRanges() async throws {
        try #require(SambaActiveDirectory.isAvailable, "needs root and Samba's AD domain controller")
        let server = try SambaActiveDirectory.start(ldif: Self.largeGroupLDIF)
        defer { server.destroy() }
        let world = try Self.world(server)
        world.configuration.rangeSize = 500
        world.configuration.attributes = ["phones": "otherTelephone"]
        let ranges = RangeLog()
        world.tuning.afterRange = { dn, low in ranges.record(dn, low) }
        world.start()

        var grants = Self.largeGroupGrants
        try await world.waitForGrants(grants, "all 2,000 members of support granted")
        #expect(grants.count == 2_001)
        #expect(ranges.lows(of: Self.support) == [500, 1_000, 1_500], "the complete read followed the ranges")
        let phones = try await world.identity("alice")?.attributes["phones"] ?? []
        #expect(Set(phones) == ["555-0101", "555-0102", "555-0103"], "a mapped attribute asked for in ranges, whole")

        // The group changes: the USN poll reads it again, in ranges, and only u1800 leaves it.
        ranges.clear()
        try server.modify("""
            dn: \(Self.support)
            changetype: modify
            delete: member
            member: CN=u1800,\(Self.people)
            """)
        grants.remove("u1800 support-copilot tickets:read zendesk:queue/Support")
        try await world.waitForGrants(grants, "u1800 removed from support")
        #expect(ranges.lows(of: Self.support) == [500, 1_000, 1_500], "the poll followed the ranges")
        let revoked = try await world.audit("grant.revoked")
        #expect(revoked.count == 1, "only u1800's grant is revoked: \(revoked.count)")
        #expect(try await world.audit("source.degraded").isEmpty)
        await world.stop()
    }

    @Test("a ranged read whose domain controller stops answering half way revokes nothing")
    func rangedReadFailingHalfWay() async throws {
        try #require(SambaActiveDirectory.isAvailable, "needs root and Samba's AD domain controller")
        let server = try SambaActiveDirectory.start(ldif: Self.largeGroupLDIF)
        defer { server.destroy() }
        // Limits that hold nothing: a read that took the first 1,000 members for the whole
        // group would revoke the other 1,000 grants, not have its plan held.
        let world = try Self.world(
            server, safety: SafetyLimits(maxRevocationsPerRun: 100_000, maxRevocationRatio: 1, minGrantsForRatio: 1_000_000))
        world.configuration.rangeSize = 500
        world.configuration.timeout = .seconds(3)
        let trap = Trigger()
        world.tuning.afterRange = { dn, low in
            // After the range from 500, the domain controller hangs for 3.5 s: longer than the
            // range request from 1,000 waits (3 s), shorter than the requests after it would.
            // A read that took the failed range for the group's end would then go on and
            // succeed with half the group.
            guard low == 500, dn.caseInsensitiveCompare(Self.support) == .orderedSame, trap.fire() else { return }
            try? server.pause()
            Task {
                try await Task.sleep(for: .milliseconds(3_500))
                try server.resume()
            }
        }
        world.start()
        let grants = Self.largeGroupGrants
        try await world.waitForGrants(grants, "all 2,000 members of support granted")
        let service = try #require(world.service)

        trap.arm()
        var failure = ""
        do {
            _ = try await service.resync()
            Issue.record("the complete read succeeded although the domain controller stopped answering")
        } catch {
            failure = "\(error)"
        }
        #expect(failure.contains("in ranges failed at member;range=1000-1499 after 1000 values"), "\(failure)")
        #expect(failure.contains("no complete answer within"), "the range request reached its deadline: \(failure)")
        #expect(try await world.grants() == grants, "nothing revoked while the domain controller hangs")

        try await world.eventually("source.recovered audited") { try await !world.audit("source.recovered").isEmpty }
        _ = try await service.resync()
        #expect(try await world.grants() == grants)
        #expect(try await world.audit("grant.revoked").isEmpty)
        let degraded = try await world.audit("source.degraded").first?["reason"] ?? ""
        #expect(degraded.contains("in ranges failed at member;range=1000-1499"), "\(degraded)")
        await world.stop()
    }

    @Test("a group that changes between two of its ranges is read again from its first value")
    func groupChangingBetweenRanges() async throws {
        try #require(SambaActiveDirectory.isAvailable, "needs root and Samba's AD domain controller")
        let server = try SambaActiveDirectory.start(ldif: Self.largeGroupLDIF)
        defer { server.destroy() }
        let world = try Self.world(server)
        world.configuration.rangeSize = 500
        let ranges = RangeLog()
        // The member the server lists first: removing it shifts every later value down by one,
        // so a read that went on from 500 would never see the value that was at 500.
        let first = try Slapd.run("/usr/bin/ldapsearch", [
            "-x", "-LLL", "-o", "ldif-wrap=no", "-H", server.url, "-D", server.bindDN, "-w", server.password,
            "-b", Self.support, "-s", "base", "(objectClass=*)", "member;range=0-0",
        ]).split(separator: "\n").first { $0.hasPrefix("member;range=0-") }.map { String($0.split(separator: " ", maxSplits: 1)[1]) }
        let removed = try #require(first)
        let name = try #require(removed.split(separator: ",").first?.dropFirst(3))
        let trap = Trigger()
        world.tuning.afterRange = { dn, low in
            ranges.record(dn, low)
            guard low == 500, dn.caseInsensitiveCompare(Self.support) == .orderedSame, trap.fire() else { return }
            // Off the cooperative pool: ldapmodify is a process the hook waits for.
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                Thread.detachNewThread {
                    try? server.modify("dn: \(Self.support)\nchangetype: modify\ndelete: member\nmember: \(removed)\n")
                    done.resume()
                }
            }
        }
        world.start()
        var grants = Self.largeGroupGrants
        try await world.waitForGrants(grants, "all 2,000 members of support granted")
        let service = try #require(world.service)

        ranges.clear()
        trap.arm()
        _ = try await service.resync()
        grants.remove("\(name) support-copilot tickets:read zendesk:queue/Support")
        #expect(try await world.grants() == grants, "the complete read saw 1,999 members, \(name) not among them")
        // (A poll that follows reads the changed group once more: only the first six are the resync's.)
        #expect(Array(ranges.lows(of: Self.support).prefix(6)) == [500, 1_000, 0, 500, 1_000, 1_500], "read again from 0")
        try await world.waitForGrants(grants, "the poll sees the same group")
        let revoked = try await world.audit("grant.revoked")
        #expect(revoked.count == 1, "only \(name)'s grant is revoked: \(revoked.map { $0["subject"] ?? "" })")
        await world.stop()
    }

    @Test("a deletion is seen within one poll from its tombstone, through the safety budget")
    func deletionWithinOnePoll() async throws {
        try #require(SambaActiveDirectory.isAvailable, "needs root and Samba's AD domain controller")
        let server = try SambaActiveDirectory.start(ldif: Self.ldif + """


            \(Self.user("carol", number: 1005, department: "Support"))
            \(Self.user("dave", number: 1006, department: "Support"))
            """)
        defer { server.destroy() }
        try server.modify("""
            dn: \(Self.support)
            changetype: modify
            add: member
            member: CN=carol,\(Self.people)
            member: CN=dave,\(Self.people)
            """)
        // One revocation per window: the second deletion's revocation must be held.
        let world = try Self.world(server, safety: SafetyLimits(maxRevocationsPerRun: 1, window: 3_600))
        world.start()
        var grants: Set<String> = [
            "jdoe support-copilot tickets:read zendesk:queue/Support",
            "alice support-copilot tickets:read zendesk:queue/Support",
            "carol support-copilot tickets:read zendesk:queue/Support",
            "dave support-copilot tickets:read zendesk:queue/Support",
            "agent:ledger-bot ledger-bot ledger:read erp:ledger/*",
        ]
        try await world.waitForGrants(grants, "initial grants")
        let carol = try #require(try await world.identity("carol")?.sources[.ldap]?.externalId)

        try server.modify("dn: CN=carol,\(Self.people)\nchangetype: delete\n")
        grants.remove("carol support-copilot tickets:read zendesk:queue/Support")
        try await world.waitForGrants(grants, "carol's deletion seen by a poll")
        #expect(try await world.identity("carol")?.status == .terminated)
        #expect(world.events.all.contains(.deletionApplied(externalId: carol)))
        let completeReads = world.events.all.filter { if case .snapshotApplied = $0 { true } else { false } }
        #expect(completeReads.count == 1, "no complete read after the first: \(completeReads)")

        // The second deletion in the same window would be the second revocation: held.
        try server.modify("dn: CN=dave,\(Self.people)\nchangetype: delete\n")
        try await world.eventually("dave's deletion held") { try await !world.store.plans(status: .held).isEmpty }
        #expect(try await world.grants() == grants, "dave keeps his grant until an operator approves")
        #expect(try await world.audit("grant.revoked").count == 1)
        await world.stop()
    }
}

/// The ranges a read asked for, by entry DN (lowercased).
final class RangeLog: Sendable {
    private let lows = Mutex<[String: [Int]]>([:])

    func record(_ dn: String, _ low: Int) {
        lows.withLock { $0[dn.lowercased(), default: []].append(low) }
    }

    func lows(of dn: String) -> [Int] {
        lows.withLock { $0[dn.lowercased()] ?? [] }
    }

    func clear() {
        lows.withLock { $0.removeAll() }
    }
}
