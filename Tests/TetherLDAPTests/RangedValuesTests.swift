import Foundation
import SlapdHarness
import TetherConfig
import TetherCore
@testable import TetherLDAP
import Testing

/// Active Directory's incremental retrieval of multi-valued attributes, as far as it can be
/// checked without a domain controller (the reading itself: `ActiveDirectoryTests`).
@Suite("LDAP ranged values")
struct RangedValuesTests {
    @Test("a range option is read from the attribute description the server sent")
    func parsing() throws {
        #expect(try ValueRange.parse("member;range=1500-*") == ValueRange(attribute: "member", low: 1_500, high: nil))
        #expect(try ValueRange.parse("member;range=0-1499") == ValueRange(attribute: "member", low: 0, high: 1_499))
        #expect(try ValueRange.parse("Member;Range=0-0") == ValueRange(attribute: "member", low: 0, high: 0))
        #expect(
            try ValueRange.parse("member;binary;range=5-*") == ValueRange(attribute: "member;binary", low: 5, high: nil),
            "other options stay with the attribute")
        #expect(try ValueRange.parse("member") == nil)
        #expect(try ValueRange.parse("member;binary") == nil)
        #expect(try ValueRange.parse("rangeOfThings") == nil, "range= is an option, not a prefix of the name")
    }

    @Test(
        "a malformed range is an error that names it, never a guess",
        arguments: [
            ("member;range=abc", "not two bounds"), ("member;range=5-2", "below the low one"),
            ("member;range=1-", "neither a number nor *"), ("member;range=-5", "the low bound is not a number"),
            ("member;range=*-*", "the low bound is not a number"), ("member;range=1-2-3", "not two bounds"),
            ("member;range=0-1;range=2-3", "more than one range option"), (";range=0-1", "no attribute name"),
            ("member;range=9999999999-*", "the low bound is not a number"), ("member;range=+1-2", "the low bound"),
            ("member;range=0-١", "neither a number nor *"),
        ])
    func malformed(description: String, why: String) {
        do {
            let range = try ValueRange.parse(description)
            Issue.record("\(description) was read as \(String(describing: range))")
        } catch let error as LDAPError {
            #expect(error.code == .search)
            #expect(error.message.contains("\"\(description)\""), "\(error)")
            #expect(error.message.contains(why), "\(error)")
            #expect(error.message.contains("expected range=LOW-HIGH or range=LOW-*"), "\(error)")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }

    @Test("the next range is asked for from the value after the last one")
    func requests() {
        #expect(ValueRange.description("member", low: 1_500, size: nil) == "member;range=1500-*")
        #expect(ValueRange.description("member", low: 1_500, size: 500) == "member;range=1500-1999")
        #expect(ValueRange.description("member", low: 0, size: 1) == "member;range=0-0")
    }

    @Test("rangeSize asks for group members and extra attributes in ranges from the first request")
    func firstRequest() throws {
        var configuration = LDAPConfiguration(
            url: "ldap://dc.example.test", users: LDAPUsersConfiguration(base: "OU=People,DC=example,DC=test"),
            groups: LDAPGroupsConfiguration(base: "OU=Groups,DC=example,DC=test", memberAttributes: ["member"]),
            mapping: LDAPMappingConfiguration(externalId: "objectGUID", userName: "sAMAccountName"),
            attributes: ["phones": "otherTelephone", "guid": "objectGUID"])
        let whole = EntryMapper(configuration)
        #expect(whole.groupsRequest?.requestedAttributes.contains("member") == true)
        #expect(whole.groupsRequest?.rangeSize == nil)

        configuration.rangeSize = 500
        let mapper = EntryMapper(configuration)
        let groups = try #require(mapper.groupsRequest)
        #expect(groups.requestedAttributes.contains("member;range=0-499"))
        #expect(groups.requestedAttributes.contains("memberUid;range=0-499"))
        #expect(groups.requestedAttributes.contains("cn"), "single-valued attributes are asked for whole")
        #expect(groups.attributes.contains("member"), "entries still hold the values under the plain name")
        #expect(mapper.usersRequest.requestedAttributes.contains("otherTelephone;range=0-499"))
        #expect(mapper.usersRequest.requestedAttributes.contains("objectGUID"), "the binary externalId is not ranged")
        #expect(mapper.usersRequest.requestedAttributes.contains("sAMAccountName"))
    }

    @Test("an entry names the attributes it holds in ranges")
    func rangedNames() {
        var entry = LDAPEntry(dn: "CN=g", attributes: ["cn": ["g"], "member;range=0-1": ["CN=a", "CN=b"]])
        #expect(entry.rangedNames == ["member;range=0-1"])
        entry.setValues("member;range=0-1", [])
        entry.setValues("member", ["CN=a", "CN=b", "CN=c"])
        #expect(entry.rangedNames.isEmpty)
        #expect(entry["member"] == ["CN=a", "CN=b", "CN=c"])
        #expect(entry.attributes == ["cn": ["g"], "member": ["CN=a", "CN=b", "CN=c"]])
    }

    @Test("rangeSize against a directory that is not Active Directory degrades the source, revokes nothing")
    func rangeSizeNeedsActiveDirectory() async throws {
        let slapd = try await Slapd.start(ldif: Fixture.ldif)
        defer { slapd.destroy() }
        let world = try World(slapd: slapd, changeDetection: .poll)
        world.start()
        try await world.waitForGrants(Fixture.initialGrants, "initial grants")
        await world.stop()

        world.configuration.rangeSize = 500
        try await world.restart()
        try await world.eventually("source.degraded audited") { try await !world.audit("source.degraded").isEmpty }
        let reason = try await world.audit("source.degraded").first?["reason"] ?? ""
        #expect(reason.contains("rangeSize: 500 asks for Active Directory's ranged retrieval"), "\(reason)")
        #expect(reason.contains("is not an Active Directory domain controller"), "\(reason)")
        #expect(try await world.grants() == Fixture.initialGrants)
        #expect(try await world.audit("grant.revoked").isEmpty)
        await world.stop()
    }
}
