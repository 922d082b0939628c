import CLDAP
import Foundation
import SlapdHarness
import TetherConfig
import TetherCore
@testable import TetherLDAP
import TetherStore
import Testing

/// An entry that is in the directory but cannot be decoded or mapped is not a deletion
/// (SPEC §3, §12): the read is incomplete for that person, who keeps their state, and the
/// entry is counted for `tether status` and `/metrics`. A person whose entry is gone still leaves.
@Suite("LDAP entries that cannot be read or mapped")
struct UnreadableEntryTests {
    static let alice = "uid=alice,ou=sales,\(Fixture.people)"

    static func unreadableCount(_ world: World) async throws -> Int? {
        try await world.store.sourceState(.ldap)?.unreadableEntries
    }

    @Test(
        "a person whose entry loses its externalId keeps their state, through changes, complete reads and a restart",
        arguments: [LDAPChangeDetection.syncrepl, .poll])
    func lostExternalId(detection: LDAPChangeDetection) async throws {
        let slapd = try await Slapd.start(ldif: Fixture.ldif, options: Slapd.Options(syncprov: detection == .syncrepl))
        defer { slapd.destroy() }
        // Complete reads every second (World's fullScanInterval), in both modes.
        let world = try World(slapd: slapd, changeDetection: detection)
        world.configuration.mapping.externalId = "employeeNumber"
        world.start()
        var grants = Fixture.initialGrants
        try await world.waitForGrants(grants, "initial grants")
        try await world.eventually("no unreadable entry counted") { try await Self.unreadableCount(world) == 0 }
        let before = try #require(try await world.identity("alice"))

        try slapd.modify("""
            dn: \(Self.alice)
            changetype: modify
            delete: employeeNumber
            """)
        try await world.eventually("alice's entry counted as unreadable") { try await Self.unreadableCount(world) == 1 }
        // A complete read on request, and the periodic ones meanwhile.
        let service = try #require(world.service)
        _ = try await service.resync()
        #expect(try await world.identity("alice")?.status == .active)
        #expect(try await world.grants() == grants)
        #expect(try await Self.unreadableCount(world) == 1)

        // After a restart the mirror is empty: the entry is recognised by its userName.
        world.events.clear()
        try await world.restart()
        try await world.eventually("a complete read after the restart") {
            world.events.all.contains { if case .snapshotApplied = $0 { true } else { false } }
        }
        _ = try await #require(world.service).resync()
        #expect(try await world.identity("alice")?.status == .active)
        #expect(try await world.grants() == grants)
        #expect(try await world.store.identityCounts()[.terminated] ?? 0 == 0)
        #expect(try await world.audit("grant.revoked").isEmpty)
        #expect(try await Self.unreadableCount(world) == 1)

        // The attribute back: nothing unreadable, the same identity, nothing re-granted.
        try slapd.modify("""
            dn: \(Self.alice)
            changetype: modify
            add: employeeNumber
            employeeNumber: 1003
            """)
        try await world.eventually("the count back to zero") { try await Self.unreadableCount(world) == 0 }
        #expect(try await world.identity("alice")?.id == before.id)
        #expect(try await world.identity("alice")?.status == .active)

        // A person whose entry is simply gone still leaves.
        try slapd.modify("""
            dn: \(Self.alice)
            changetype: delete
            """)
        grants.remove("alice support-copilot tickets:read zendesk:queue/Support")
        try await world.waitForGrants(grants, "alice deleted")
        // In poll mode refint's group edit may revoke the grant first; the complete read then terminates.
        try await world.eventually("alice terminated") { try await world.identity("alice")?.status == .terminated }
        await world.stop()
    }

    @Test("a mapped attribute that is not UTF-8 leaves its person as they were")
    func undecodableAttribute() async throws {
        let slapd = try await Slapd.start(ldif: Fixture.ldif)
        defer { slapd.destroy() }
        let world = try World(slapd: slapd, changeDetection: .syncrepl)
        // audio is an Octet String: slapd stores any bytes in it.
        world.configuration.attributes["badge"] = "audio"
        world.start()
        let grants = Fixture.initialGrants
        try await world.waitForGrants(grants, "initial grants")
        let facts = try #require(try await world.identity("alice")?.sources[.ldap])

        try slapd.modify("""
            dn: \(Self.alice)
            changetype: modify
            replace: audio
            audio:: //79
            """)
        try await world.eventually("alice's entry counted as unreadable") { try await Self.unreadableCount(world) == 1 }
        _ = try await #require(world.service).resync()
        #expect(try await world.identity("alice")?.sources[.ldap] == facts, "kept as they were, no U+FFFD in their facts")
        #expect(try await world.identity("alice")?.status == .active)
        #expect(try await world.grants() == grants)

        try slapd.modify("""
            dn: \(Self.alice)
            changetype: modify
            replace: audio
            audio: B-17
            """)
        try await world.eventually("the count back to zero") { try await Self.unreadableCount(world) == 0 }
        try await world.eventually("alice's badge read") {
            try await world.identity("alice")?.sources[.ldap]?.attributes["badge"] == ["B-17"]
        }
        await world.stop()
    }

    @Test("the mapper says why an entry cannot be mapped: no externalId, a DN or attribute not UTF-8")
    func mapperReasons() {
        var configuration = LDAPConfiguration(url: "ldap://x", users: LDAPUsersConfiguration(base: "dc=x"))
        configuration.mapping.externalId = "employeeNumber"
        let mapper = EntryMapper(configuration)
        let attributes = ["entryUUID": ["u-1"], "uid": ["alice"], "mail": ["alice@example.com"], "employeeNumber": ["1003"]]

        #expect(mapper.user(LDAPEntry(dn: "uid=alice,dc=x", attributes: attributes))?.externalId == "1003")

        var withoutNumber = attributes
        withoutNumber["employeeNumber"] = nil
        guard case .unreadable(let missing) = mapper.mapUser(LDAPEntry(dn: "uid=alice,dc=x", attributes: withoutNumber)) else {
            Issue.record("an entry without its externalId must be unreadable")
            return
        }
        #expect(missing.reason == "it has no employeeNumber (mapping.externalId)")
        #expect(missing.key == "u-1" && missing.userName == "alice" && missing.email == "alice@example.com")

        let badDN = LDAPEntry(dn: "uid=al\u{FFFD}ce,dc=x", attributes: attributes, undecodable: ["dn"])
        guard case .unreadable(let dn) = mapper.mapUser(badDN) else {
            Issue.record("an entry whose DN is not UTF-8 must be unreadable")
            return
        }
        #expect(dn.reason == "its DN is not valid UTF-8")

        let badMail = LDAPEntry(dn: "uid=alice,dc=x", attributes: attributes, undecodable: ["mail"])
        guard case .unreadable(let mail) = mapper.mapUser(badMail, syncUUID: "sync-1") else {
            Issue.record("an entry with a mapped attribute that is not UTF-8 must be unreadable")
            return
        }
        #expect(mail.reason == "mail is not valid UTF-8")
        #expect(mail.key == "sync-1" && mail.email == nil, "an undecodable value is not used to recognise the person")
    }

    @Test("bytes that are not UTF-8 are noticed as they are decoded")
    func decoding() {
        var bytes: [CChar] = [0x61, -1, 0x62]
        let invalid = bytes.withUnsafeMutableBufferPointer { String.decoding(berval(bv_len: 3, bv_val: $0.baseAddress)) }
        #expect(invalid.valid == false && invalid.text == "a\u{FFFD}b")
        bytes = [0x61, 0x62, 0x63]
        let valid = bytes.withUnsafeMutableBufferPointer { String.decoding(berval(bv_len: 3, bv_val: $0.baseAddress)) }
        #expect(valid.valid && valid.text == "abc")
    }

    @Test("a complete read keeps the person an unreadable entry was; a person gone from it still leaves")
    func completeReadKeepsUnreadablePeople() {
        var configuration = LDAPConfiguration(url: "ldap://x", users: LDAPUsersConfiguration(base: "dc=x"))
        configuration.mapping.externalId = "employeeNumber"
        let mapper = EntryMapper(configuration)
        func entry(_ uid: String, number: String?) -> LDAPEntry {
            var attributes = ["entryUUID": ["uuid-\(uid)"], "uid": [uid]]
            attributes["employeeNumber"] = number.map { [$0] }
            return LDAPEntry(dn: "uid=\(uid),dc=x", attributes: attributes)
        }
        var mirror = DirectoryMirror(nested: true)
        mirror.adopt(
            DirectoryModel(nested: true, users: [entry("alice", number: "1"), entry("bob", number: "2")].compactMap { mapper.user($0) }, groups: [DirectoryGroup]()),
            unreadable: [])
        let applied = mirror.snapshotFacts()
        for facts in applied { mirror.recordApplied(facts) }

        // alice's number is gone, bob's entry is gone.
        guard case .unreadable(let alice) = mapper.mapUser(entry("alice", number: nil)) else {
            Issue.record("alice's entry must be unreadable")
            return
        }
        mirror.adopt(DirectoryModel(nested: true), unreadable: [alice])
        #expect(mirror.snapshotFacts().map(\.externalId) == ["1"], "alice kept, bob not")
        #expect(mirror.unreadable["uuid-alice"]?.externalId == "1")

        // After a restart the model is empty: alice is recognised by her userName, and kept
        // with the facts the engine holds for her (read from the store), bob still not.
        var restarted = DirectoryMirror(nested: true, applied: mirror.applied)
        restarted.adopt(DirectoryModel(nested: true), unreadable: [alice])
        #expect(restarted.unreadablePeople() == ["1"])
        let held = Dictionary(uniqueKeysWithValues: applied.compactMap { facts in facts.externalId.map { ($0, facts) } })
        #expect(restarted.snapshotFacts(keeping: held) == applied.filter { $0.externalId == "1" })
    }

    @Test("an unreadable entry is recognised by userName or email only when one person applied has it, as applied now")
    func recognisedByNameAsAppliedNow() {
        var mirror = DirectoryMirror(nested: true)
        for (id, userName, email) in [("1", "Ann", "shared@example.com"), ("2", "bob", "SHARED@example.com")] {
            mirror.recordApplied(IdentityFacts(externalId: id, userName: userName, email: email, version: "v1"))
        }
        func unreadable(_ key: String, userName: String?, email: String?) -> UnreadableEntry {
            UnreadableEntry(key: key, dn: "uid=\(key),dc=x", normalizedDN: "uid=\(key),dc=x", userName: userName, email: email, reason: "test")
        }
        #expect(mirror.attributed(unreadable("k1", userName: "ANN", email: nil)).externalId == "1")
        // Two people share the email: it tells nobody apart.
        #expect(mirror.attributed(unreadable("k2", userName: nil, email: "shared@example.com")).externalId == nil)
        #expect(mirror.attributed(unreadable("k3", userName: "carol", email: nil)).externalId == nil)

        // Applied since the first look: recognised now.
        mirror.recordApplied(IdentityFacts(externalId: "3", userName: "carol", version: "v1"))
        #expect(mirror.attributed(unreadable("k4", userName: "carol", email: nil)).externalId == "3")
        mirror.applied = [:]
        #expect(mirror.attributed(unreadable("k5", userName: "carol", email: nil)).externalId == nil)
    }
}
