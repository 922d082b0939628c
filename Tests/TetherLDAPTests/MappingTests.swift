import Foundation
import TetherConfig
import TetherCore
@testable import TetherLDAP
import PropertyInput
import Testing

@Suite("LDAP filters, versions, names and mapping")
struct MappingTests {
    @Test("values entering a filter are escaped per RFC 4515")
    func filterEscaping() {
        #expect(LDAPFilter.escape("a*b(c)d\\e\0f") == "a\\2ab\\28c\\29d\\5ce\\00f")
        #expect(LDAPFilter.escape("Zoë") == "Zoë")
        #expect(LDAPFilter.equality("uid", "*)(uid=*") == "(uid=\\2a\\29\\28uid=\\2a)")
        #expect(LDAPFilter.and(["objectClass=person", "(modifyTimestamp>=20261128100000Z)"])
            == "(&(objectClass=person)(modifyTimestamp>=20261128100000Z))")
        #expect(LDAPFilter.and(["(uid=a)"]) == "(uid=a)")
    }

    @Test("an entryCSN's version is its time's version followed by the rest, whatever the time's form")
    func csnVersionsMatchTimeVersions() {
        let seed = propertySeed("entryCSN versions")
        var random = SeededRandom(seed: seed)
        var failures = PropertyFailures(seed: seed)
        let pieces = ["2026", "1128", "10", "00", "00", "99", "13", "32", "24", "60", ".", ",", "5", "123456", "1234567",
                      "Z", "+0200", "-0130", "#000000#000#000000", "#", "x", "ü", ""]
        var valid = 0
        for _ in 0..<20_000 {
            var time = random.chance(70) ? "20261128" + String(format: "%06d", random.below(250_000)) : ""
            if random.chance(60) {
                time += random.pick([".", ","]) + String(String(random.next()).prefix(random.below(9)))
            }
            time += random.chance(70) ? "Z" : ""
            for _ in 0..<random.below(3) { time += random.pick(pieces) }
            let rest = random.chance(80) ? "#00000\(random.below(10))#000#000000" : ""
            let expected = time.contains("#") ? nil : DirectoryVersion.fromGeneralizedTime(time).map { $0 + rest }
            guard !time.contains("#") else { continue }
            let got = DirectoryVersion.fromCSN(time + rest)
            if got != nil { valid += 1 }
            failures.check(got == expected, "\((time + rest).debugDescription): \(String(describing: got)), expected \(String(describing: expected))")
        }
        failures.finish("entryCSN versions: \(valid) valid of 20,000")
        #expect(valid > 500, "too few valid times to compare: \(valid)")
    }

    @Test("entryCSN and GeneralizedTime become versions whose string order is time order")
    func versions() {
        #expect(DirectoryVersion.fromCSN("20261128100000.123456Z#000000#000#000000")
            == "2026-11-28T10:00:00.123456Z#000000#000#000000")
        #expect(DirectoryVersion.fromGeneralizedTime("20261128100000Z") == "2026-11-28T10:00:00.000000Z")
        #expect(DirectoryVersion.fromGeneralizedTime("20261128100000.5Z") == "2026-11-28T10:00:00.500000Z")
        #expect(DirectoryVersion.fromGeneralizedTime("20261128120000+0200") == "2026-11-28T10:00:00.000000Z")
        #expect(DirectoryVersion.fromGeneralizedTime("yesterday") == nil)
        #expect(DirectoryVersion.fromGeneralizedTime("20261128100000Z")
            == Timestamp.version(Date(timeIntervalSince1970: 1_795_860_000)))
        // Same instant, CSN form after the plain form; a later instant after both.
        let plain = DirectoryVersion.fromGeneralizedTime("20261128100000Z")!
        let csn = DirectoryVersion.fromCSN("20261128100000.000000Z#000001#000#000000")!
        let later = DirectoryVersion.fromCSN("20261128100001.000000Z#000000#000#000000")!
        #expect(plain < csn && csn < later)
        #expect(DirectoryVersion.fromCookie(Data("rid=000,csn=20261129005322.932528Z#000000#000#000000".utf8))
            == "2026-11-29T00:53:22.932528Z#000000#000#000000")
    }

    @Test("an objectGUID renders as the UUID string Active Directory tools show")
    func objectGUID() {
        // The GUID {01020304-0506-0708-090a-0b0c0d0e0f10} as AD stores it: first fields little-endian.
        let stored: [UInt8] = [4, 3, 2, 1, 6, 5, 8, 7, 9, 10, 11, 12, 13, 14, 15, 16]
        #expect(UUIDText.format(stored, littleEndianFields: true) == "01020304-0506-0708-090a-0b0c0d0e0f10")
        #expect(UUIDText.format(Array(1...16), littleEndianFields: false) == "01020304-0506-0708-090a-0b0c0d0e0f10")
    }

    @Test("DNs compare case-insensitively and without spaces around separators")
    func distinguishedNames() {
        #expect(DistinguishedName.normalize("UID=Alice, OU=People,dc=Example, dc=com") == "uid=alice,ou=people,dc=example,dc=com")
        #expect(DistinguishedName.normalize("cn=Smith\\, John,ou=x") == "cn=smith\\, john,ou=x")
        #expect(DistinguishedName.isWithin("uid=a,ou=eng,ou=people,dc=x", base: "OU=People,DC=x"))
        #expect(!DistinguishedName.isWithin("uid=a,ou=groups,dc=x", base: "ou=people,dc=x"))
        #expect(EntryMapper.strippingOptionalUID("uid=a,dc=x#'0101'B") == "uid=a,dc=x")
        #expect(EntryMapper.strippingOptionalUID("cn=odd#name") == "cn=odd#name")
    }

    @Test("nested groups are followed without looping on a cycle")
    func groupExpansion() {
        let parents: [String: [String]] = ["a": ["b"], "b": ["c"], "c": ["a"], "d": []]
        #expect(GroupExpander.ancestors(of: ["a"]) { parents[$0] ?? [] } == ["a", "b", "c"])
        #expect(GroupExpander.ancestors(of: ["d"]) { parents[$0] ?? [] } == ["d"])
        #expect(GroupExpander.descendants(of: "c") { key in parents.filter { $0.value.contains(key) }.map(\.key) }
            == ["a", "b", "c"])
    }

    static func configuration(
        externalId: String = "entryUUID", suspendWhen: LDAPSuspendConfiguration? = nil, nested: Bool = true
    ) -> LDAPConfiguration {
        LDAPConfiguration(
            url: "ldap://127.0.0.1", users: LDAPUsersConfiguration(base: "ou=people,dc=x"),
            groups: LDAPGroupsConfiguration(base: "ou=groups,dc=x", nested: nested),
            mapping: LDAPMappingConfiguration(externalId: externalId), attributes: ["costCenter": "businessCategory"],
            suspendWhen: suspendWhen)
    }

    @Test("an Active Directory entry: objectGUID as externalId, disabled bit via suspendWhen bitsSet")
    func activeDirectoryEntry() throws {
        let mapper = EntryMapper(Self.configuration(
            externalId: "objectGUID",
            suspendWhen: LDAPSuspendConfiguration(attribute: "userAccountControl", test: .bitsSet(2))))
        #expect(mapper.usersRequest.binaryAttributes == ["objectguid"])
        var entry = LDAPEntry(
            dn: "CN=Ann Lee,OU=People,DC=x",
            attributes: [
                "uid": ["ann"], "useraccountcontrol": ["514"], "whenchanged": ["20261128100000.0Z"],
                "businesscategory": ["CC-7"], "manager": ["CN=Boss,OU=People,DC=x"],
            ],
            binary: ["objectguid": [[4, 3, 2, 1, 6, 5, 8, 7, 9, 10, 11, 12, 13, 14, 15, 16]]])
        let user = try #require(mapper.user(entry))
        #expect(user.externalId == "01020304-0506-0708-090a-0b0c0d0e0f10")
        #expect(user.key == user.externalId)
        #expect(user.suspended)
        #expect(user.version == "2026-11-28T10:00:00.000000Z")
        #expect(user.attributes == ["costCenter": ["CC-7"]])
        #expect(user.managerDN == "cn=boss,ou=people,dc=x")
        entry.attributes["useraccountcontrol"] = ["512"]
        #expect(try #require(mapper.user(entry)).suspended == false)
        entry.binary = [:]
        #expect(mapper.user(entry) == nil, "no externalId, no identity")
    }

    @Test("suspendWhen compares values as the directory does: case-insensitively")
    func suspendWhen() {
        let mapper = EntryMapper(Self.configuration(
            suspendWhen: LDAPSuspendConfiguration(attribute: "nsAccountLock", test: .equals("true"))))
        let locked = LDAPEntry(dn: "uid=a,dc=x", attributes: ["entryuuid": ["u1"], "nsaccountlock": ["TRUE"]])
        let open = LDAPEntry(dn: "uid=a,dc=x", attributes: ["entryuuid": ["u1"]])
        #expect(mapper.user(locked)?.suspended == true)
        #expect(mapper.user(open)?.suspended == false)
    }

    static func user(_ uid: String, manager: String? = nil, version: String = "v1") -> DirectoryUser {
        DirectoryUser(
            key: "k-\(uid)", dn: "uid=\(uid),ou=people,dc=x", normalizedDN: "uid=\(uid),ou=people,dc=x",
            externalId: "e-\(uid)", userName: uid, managerDN: manager.map { "uid=\($0),ou=people,dc=x" },
            attributes: [:], suspended: false, version: version)
    }

    static func group(_ cn: String, members: [String] = [], groups: [String] = [], uids: [String] = []) -> DirectoryGroup {
        DirectoryGroup(
            key: "g-\(cn)", dn: "cn=\(cn),ou=groups,dc=x", normalizedDN: "cn=\(cn),ou=groups,dc=x", cn: cn,
            memberDNs: members.map { "uid=\($0),ou=people,dc=x" } + groups.map { "cn=\($0),ou=groups,dc=x" },
            memberUids: uids, version: "g1")
    }

    @Test("a model derives transitive groups by cn and DN, posix memberUid, and the manager's key")
    func modelFacts() throws {
        let model = DirectoryModel(
            nested: true,
            users: [Self.user("ann"), Self.user("bo", manager: "ann"), Self.user("cy")],
            groups: [
                Self.group("team", members: ["bo"]), Self.group("dept", groups: ["team"]),
                Self.group("x", groups: ["y"]), Self.group("y", members: ["cy"], groups: ["x"]),
                Self.group("posix", uids: ["ann"]),
            ])
        let bo = try #require(model.facts(forUser: "k-bo"))
        #expect(bo.groups == ["team", "cn=team,ou=groups,dc=x", "dept", "cn=dept,ou=groups,dc=x"])
        #expect(bo.manager == "e-ann")
        #expect(try #require(model.facts(forUser: "k-cy")).groups
            == ["x", "y", "cn=x,ou=groups,dc=x", "cn=y,ou=groups,dc=x"])
        #expect(try #require(model.facts(forUser: "k-ann")).groups == ["posix", "cn=posix,ou=groups,dc=x"])
        #expect(model.members(ofGroup: "g-dept") == ["k-bo"])

        let flat = DirectoryModel(nested: false, users: [Self.user("bo")], groups: [
            Self.group("team", members: ["bo"]), Self.group("dept", groups: ["team"]),
        ])
        #expect(try #require(flat.facts(forUser: "k-bo")).groups == ["team", "cn=team,ou=groups,dc=x"])
    }

    @Test("a group change names exactly the people it may change, nested members included")
    func modelAffected() {
        var model = DirectoryModel(
            nested: true, users: [Self.user("ann"), Self.user("bo"), Self.user("cy")],
            groups: [Self.group("team", members: ["ann"]), Self.group("dept", groups: ["team"])])
        #expect(model.upsertGroup(Self.group("team", members: ["ann", "bo"])) == ["k-ann", "k-bo"])
        #expect(model.upsertGroup(Self.group("dept", members: ["cy"])) == ["k-ann", "k-bo", "k-cy"])
        #expect(model.removeGroup(key: "g-team") == ["k-ann", "k-bo"])
    }

    @Test("the key of a person is found by externalId, and follows people as they come and go")
    func modelKeyByExternalId() {
        var model = DirectoryModel(nested: true, users: [Self.user("ann"), Self.user("bo")], groups: [])
        #expect(model.userKey(externalId: "e-bo") == "k-bo")
        #expect(model.userKey(externalId: "e-cy") == nil)
        // Held under another key (a server that names syncrepl entries by another UUID).
        var cy = Self.user("cy")
        cy.key = "other-cy"
        model.upsertUser(cy)
        #expect(model.userKey(externalId: "e-cy") == "other-cy")
        _ = model.removeUser(key: "k-bo")
        #expect(model.userKey(externalId: "e-bo") == nil)
        var renumbered = Self.user("ann")
        renumbered.externalId = "e-ann-2"
        model.upsertUser(renumbered)
        #expect(model.userKey(externalId: "e-ann") == nil)
        #expect(model.userKey(externalId: "e-ann-2") == "k-ann")
    }

    @Test("a renamed person keeps memberships and reports until the directory rewrites them")
    func modelRename() throws {
        var model = DirectoryModel(
            nested: true, users: [Self.user("ann"), Self.user("bo", manager: "ann")],
            groups: [Self.group("team", members: ["ann"])])
        var moved = Self.user("ann")
        moved.dn = "uid=ann,ou=sales,ou=people,dc=x"
        moved.normalizedDN = moved.dn
        model.upsertUser(moved)
        #expect(try #require(model.facts(forUser: "k-ann")).groups.contains("team"))
        #expect(try #require(model.facts(forUser: "k-bo")).manager == "e-ann")
    }

    @Test("a complete read that falls between a rename and the group update keeps the membership for a while")
    func carryRenamesAcrossReads() throws {
        let before = DirectoryModel(
            nested: true, users: [Self.user("ann")], groups: [Self.group("team", members: ["ann"])])
        var moved = Self.user("ann")
        moved.dn = "uid=ann,ou=sales,ou=people,dc=x"
        moved.normalizedDN = moved.dn
        // The group still names the old DN.
        var after = DirectoryModel(nested: true, users: [moved], groups: [Self.group("team", members: ["ann"])])
        #expect(try #require(after.facts(forUser: "k-ann")).groups.isEmpty)
        after.carryRenames(since: before)
        #expect(try #require(after.facts(forUser: "k-ann")).groups.contains("team"))
        // A directory that never updates the group: one more read still carries the rename,
        // the one after sees the dangling DN.
        var next = DirectoryModel(nested: true, users: [moved], groups: [Self.group("team", members: ["ann"])])
        next.carryRenames(since: after)
        #expect(try #require(next.facts(forUser: "k-ann")).groups.contains("team"))
        var last = DirectoryModel(nested: true, users: [moved], groups: [Self.group("team", members: ["ann"])])
        last.carryRenames(since: next)
        #expect(try #require(last.facts(forUser: "k-ann")).groups.isEmpty)
    }

    @Test("versions stay monotonic when a group edit changes a person whose entry did not change")
    func mirrorVersions() throws {
        var mirror = DirectoryMirror(nested: true)
        mirror.model.replaceAll(users: [Self.user("ann", version: "2026-01-01")], groups: [])
        let first = mirror.snapshotFacts()
        #expect(first.map(\.version) == ["2026-01-01"])
        first.forEach { mirror.recordApplied($0) }

        var team = Self.group("team", members: ["ann"])
        team.version = "2026-02-01"
        let affected = mirror.model.upsertGroup(team)
        let changed = mirror.changedFacts(forUsers: affected, trigger: team.version, now: Date())
        #expect(changed.map(\.version) == ["2026-02-01"])
        changed.forEach { mirror.recordApplied($0) }
        #expect(mirror.changedFacts(forUsers: affected, trigger: team.version, now: Date()).isEmpty)

        // After a restart the same state reads with the entry's older version: the applied one is kept.
        var restarted = DirectoryMirror(nested: true, applied: mirror.applied)
        restarted.model.replaceAll(users: [Self.user("ann", version: "2026-01-01")], groups: [team])
        #expect(restarted.snapshotFacts() == changed)
        // Removed from the group while stopped: changed facts, never an older version.
        restarted.model.replaceAll(users: [Self.user("ann", version: "2026-01-01")], groups: [])
        let removed = try #require(restarted.snapshotFacts().first)
        #expect(removed.groups.isEmpty && removed.version >= "2026-02-01")
    }

    @Test("a cookie belongs to the searches it came from")
    func cookieFingerprint() throws {
        let mapper = EntryMapper(Self.configuration())
        let search = SyncCookie.fingerprint([mapper.usersRequest, mapper.groupsRequest])
        let cookie = SyncCookie(search: search, users: Data("u".utf8), groups: Data("g".utf8))
        #expect(SyncCookie(stored: cookie.encoded, search: search) == cookie)
        var other = Self.configuration()
        other.users.base = "ou=elsewhere,dc=x"
        let otherMapper = EntryMapper(other)
        #expect(SyncCookie(stored: cookie.encoded, search: SyncCookie.fingerprint([otherMapper.usersRequest, otherMapper.groupsRequest])) == nil)
        #expect(SyncCookie(stored: Data("rid=000,csn=1".utf8), search: search) == nil)
    }
}
