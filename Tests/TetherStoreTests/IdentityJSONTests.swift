import Foundation
import Testing
import TetherCore

@testable import TetherStore

/// The identity text the store writes without `JSONEncoder` reads back as the same identity.
@Suite struct IdentityJSONTests {
    static let rich = Identity(
        id: "i_rich", userName: "r\u{e9}my", email: "R\u{e9}my@Example.com", displayName: "R\u{e9}my \"the\" \\ one\n",
        employeeNumber: "42", department: "Dept 01", title: "Lead/Engineer", manager: "i_boss", status: .suspended,
        statusSource: .hr, groups: ["team-001", "cn=team-001,ou=groups,dc=example,dc=com", "Dept 01"],
        attributes: ["costCenter": ["cc-01-001"], "employeeType": ["employee", "contractor"], "\u{1}odd": []],
        sources: [
            .ldap: IdentityFacts(
                externalId: "uuid-1", userName: "r\u{e9}my", email: "R\u{e9}my@Example.com", department: "Dept 01",
                manager: "uuid-boss", status: .active, groups: ["team-001", "Dept 01"],
                attributes: ["costCenter": ["cc-01-001"]], version: "2026-01-05T09:00:00.000000Z"),
            .hr: IdentityFacts(status: .suspended, version: "2026-01-06T09:00:00.000Z"),
        ],
        lastEvents: [.hr: "evt-9", .ldap: "ldap:uuid-1:v"], isTombstone: true)

    @Test func everyPropertyOfIdentityAndItsFactsIsWritten() {
        let labels = Mirror(reflecting: Self.rich).children.compactMap(\.label).sorted()
        #expect(labels == IdentityJSON.fields.sorted())
        let factLabels = Mirror(reflecting: IdentityFacts(version: "v")).children.compactMap(\.label).sorted()
        #expect(factLabels == IdentityJSON.factFields.sorted())
    }

    @Test(arguments: [
        rich,
        Identity(id: "i_plain", userName: "plain"),
        Identity(id: "i_tomb", userName: "gone", status: .terminated, statusSource: .hr, isTombstone: true),
    ])
    func theTextDecodesToTheSameIdentity(_ identity: Identity) throws {
        let text = IdentityJSON.encode(identity)
        #expect(try SQLiteStateStore.decode(Identity.self, text, what: "identity") == identity)
    }

    /// With one value in each set (no order to differ), the text is the encoder's, byte for byte.
    @Test func theTextIsWhatTheEncoderWrites() throws {
        var identity = Self.rich
        identity.groups = ["team-001"]
        identity.sources[.ldap]?.groups = ["team-001"]
        #expect(IdentityJSON.encode(identity) == (try SQLiteStateStore.encode(identity)))
        let plain = Identity(id: "i_plain", userName: "plain")
        #expect(IdentityJSON.encode(plain) == (try SQLiteStateStore.encode(plain)))
    }

    /// Planning reads every field but each source's facts beyond their version.
    @Test(arguments: [rich, Identity(id: "i_plain", userName: "plain")])
    func planningReadsEveryFieldAndEachSourcesVersion(_ identity: Identity) throws {
        #expect(Set(PlanningIdentity.Key.allCases.map(\.rawValue)) == Set(IdentityJSON.fields))
        let read = try SQLiteStateStore.decode(PlanningIdentity.self, IdentityJSON.encode(identity), what: "identity").identity
        var expected = identity
        expected.sources = identity.sources.mapValues { IdentityFacts(status: nil, version: $0.version) }
        #expect(read == expected)
    }

    /// The decoder's planning form of `text`.
    static func decoded(_ text: String) throws -> Identity {
        try SQLiteStateStore.decode(PlanningIdentity.self, text, what: "identity").identity
    }

    /// Planning reads identities without the decoder; what it reads is what the decoder reads.
    @Test(arguments: [rich, Identity(id: "i_plain", userName: "plain"),
        Identity(id: "i_tomb", userName: "gone", status: .terminated, statusSource: .hr, isTombstone: true)])
    func theReaderReadsWhatTheDecoderReads(_ identity: Identity) throws {
        let text = IdentityJSON.encode(identity)
        #expect(PlanningIdentity.read(text) == (try Self.decoded(text)))
    }

    /// A decision reads whole identities without the decoder; what it reads is what the decoder reads.
    @Test(arguments: [rich, Identity(id: "i_plain", userName: "plain"),
        Identity(id: "i_tomb", userName: "gone", status: .terminated, statusSource: .hr, isTombstone: true)])
    func theWholeReaderReadsWhatTheDecoderReads(_ identity: Identity) throws {
        let text = IdentityJSON.encode(identity)
        #expect(IdentityJSON.read(text) == identity)
        #expect(IdentityJSON.read(text) == (try SQLiteStateStore.decode(Identity.self, text, what: "identity")))
        #expect(IdentityJSON.read(try SQLiteStateStore.encode(identity)) == identity)
    }

    /// Text the store did not write itself: spaces, other escapes, nulls, keys it does not know.
    @Test(arguments: [
        #"{ "id" : "i_1", "userName":"caf\u00e9 \ud83d\ude00\/\t", "email": null, "groups": [ "a", "b\"c" ], "#
            + #""attributes": {"x": [], "y": ["1"]}, "sources": {"ldap": {"groups": ["z"], "version": "v\n1", "#
            + #""attributes": {"a": ["b"]}, "status": null, "n": -1.5e3}}, "lastEvents": {}, "status": "active", "#
            + #""isTombstone": false, "future": {"nested": [1, true, null, {"k": "v"}]} }"#,
    ])
    func theReaderReadsOtherWellFormedText(_ text: String) throws {
        let read = try #require(PlanningIdentity.read(text))
        #expect(read == (try Self.decoded(text)))
        #expect(read.userName == "caf\u{e9} \u{1F600}/\t")
        #expect(read.sources[.ldap]?.version == "v\n1")
        let whole = try #require(IdentityJSON.read(text))
        #expect(whole == (try SQLiteStateStore.decode(Identity.self, text, what: "identity")))
        #expect(whole.sources[.ldap]?.groups == ["z"])
        #expect(whole.sources[.ldap]?.attributes == ["a": ["b"]])
        #expect(whole.sources[.ldap]?.status == nil)
    }

    /// What the reader does not expect is left to the decoder, which reads or rejects it as before.
    @Test(arguments: [
        #"{"id":"i_1","userName":"a","groups":[],"attributes":{},"sources":{},"lastEvents":{},"status":"active""#,
        #"{"id":"i_1","userName":"a","groups":[],"attributes":{},"sources":{},"lastEvents":{},"status":"weird","isTombstone":false}"#,
        #"{"id":"i_1","userName":"a","groups":[],"attributes":{},"sources":{"nis":{"version":"v"}},"lastEvents":{},"status":"active","isTombstone":false}"#,
        #"{"id":"i_1","userName":"a","groups":[],"attributes":{},"sources":{"ldap":{}},"lastEvents":{},"status":"active","isTombstone":false}"#,
        #"{"id":"i_1","userName":"a","groups":[],"attributes":{},"sources":{},"lastEvents":{},"status":"active"}"#,
        #"{"id":"i_1","userName":"a","groups":"g","attributes":{},"sources":{},"lastEvents":{},"status":"active","isTombstone":false}"#,
        #"{"id":null,"userName":"a","groups":[],"attributes":{},"sources":{},"lastEvents":{},"status":"active","isTombstone":false}"#,
        #"{"id":"i_1","userName":"a","groups":[],"attributes":{},"sources":{},"lastEvents":{},"status":"active","isTombstone":false} x"#,
        "{\"id\":\"i_\u{1}\",\"userName\":\"a\",\"groups\":[],\"attributes\":{},\"sources\":{},\"lastEvents\":{},\"status\":\"active\",\"isTombstone\":false}",
        #"{"id":"i_1","userName":"\ud83d","groups":[],"attributes":{},"sources":{},"lastEvents":{},"status":"active","isTombstone":false}"#,
    ])
    func theReaderLeavesWhatItDoesNotExpectToTheDecoder(_ text: String) {
        #expect(PlanningIdentity.read(text) == nil)
        #expect(IdentityJSON.read(text) == nil)
    }

    /// Identities read together share the values they repeat, and each still reads as the
    /// decoder reads it: the same group list twice is one value, another list another.
    @Test func identitiesReadTogetherShareWhatTheyRepeat() throws {
        var team = Self.rich
        team.id = "i_team"
        var teammate = Self.rich
        teammate.id = "i_teammate"
        teammate.userName = "mate"
        var other = Self.rich
        other.id = "i_other"
        other.groups = ["team-002"]
        other.sources[.ldap]?.attributes = ["costCenter": ["cc-02-001"]]
        let sharing = IdentityValues()
        for identity in [team, teammate, other] {
            #expect(IdentityJSON.read(IdentityJSON.encode(identity), sharing: sharing) == identity)
        }
        // Group lists: the identity's own, its LDAP facts', its HR facts' (empty), and the
        // other's own; the teammate's are all the first identity's.
        #expect(sharing.heldGroupLists == 4)
        // Attributes: the identity's own, its LDAP facts' and the other's LDAP facts'; the HR
        // facts' empty attributes are one more.
        #expect(sharing.heldAttributeSets == 4)
    }

    /// A value is taken from what was shared only when its text is the same, byte for byte,
    /// and text that is not a list of strings is refused whether or not a list was shared.
    @Test func sharingNeverTakesAnotherTextsValue() throws {
        let sharing = IdentityValues()
        let first = #"{"id":"i_1","userName":"a","groups":["x","y"],"attributes":{},"sources":{},"lastEvents":{},"status":"active","isTombstone":false}"#
        let reordered = #"{"id":"i_2","userName":"b","groups":["y", "x"],"attributes":{},"sources":{},"lastEvents":{},"status":"active","isTombstone":false}"#
        let notStrings = #"{"id":"i_3","userName":"c","groups":["x",1],"attributes":{},"sources":{},"lastEvents":{},"status":"active","isTombstone":false}"#
        #expect(IdentityJSON.read(first, sharing: sharing)?.groups == ["x", "y"])
        #expect(IdentityJSON.read(reordered, sharing: sharing)?.groups == ["x", "y"])
        #expect(sharing.heldGroupLists == 2)
        #expect(IdentityJSON.read(notStrings, sharing: sharing) == nil)
        #expect(sharing.heldGroupLists == 2)
    }

    /// Facts the whole reader does not expect are left to the decoder too; planning, which
    /// reads only their version, may read them.
    @Test(arguments: [
        #"{"version":"v","groups":["a"]}"#,  // attributes missing
        #"{"version":"v","groups":[],"attributes":{},"status":"retired"}"#,
        #"{"version":"v","groups":[],"attributes":{"a":"b"}}"#,
        #"{"version":"v","groups":[],"attributes":{},"email":7}"#,
    ])
    func wholeFactsItDoesNotExpectAreLeftToTheDecoder(_ facts: String) throws {
        let text = #"{"id":"i_1","userName":"a","groups":[],"attributes":{},"sources":{"ldap":"#
            + facts + #"},"lastEvents":{},"status":"active","isTombstone":false}"#
        #expect(IdentityJSON.read(text) == nil)
        #expect(PlanningIdentity.read(text)?.sources[.ldap]?.version == "v")
    }
}
