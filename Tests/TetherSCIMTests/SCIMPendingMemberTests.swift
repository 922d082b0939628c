import Foundation
import HummingbirdTesting
import Testing
import TetherCore
import TetherSCIM
import TetherStore

/// Identity providers push Groups while their Users are still being provisioned: a member
/// that names no resource yet is kept as a reference, hidden from reads, and resolved when
/// that User arrives, which then gets the Group's grants.
@Suite struct SCIMPendingMemberTests {
    static let groupSchema = "urn:ietf:params:scim:schemas:core:2.0:Group"

    @Test func aGroupPushedBeforeItsUserGrantsWhenTheUserArrives() async throws {
        let world = try World()
        try await world.withRouter { client in
            try await client.createUser("jdoe")
            let carol = try await client.createUser("carol", extra: supportUser.replacingOccurrences(of: "1001", with: "1003"))
            // One member exists, one is the identity provider's id of a User not pushed yet.
            let group = try await client.scim(
                .post, "Groups",
                #"{"schemas":["\#(Self.groupSchema)"],"displayName":"support","members":[{"value":"\#(carol.id!)"},{"value":"okta-00u1001","display":"alice"}]}"#)
            #expect(group.status == 201, "\(group.text)")
            let gid = try #require(group.id)
            #expect(group["members"]?.arrayValue?.compactMap { $0["value"]?.stringValue } == [carol.id!])
            #expect(try await world.grants(of: "carol").count == 2)
            // Reads and filters show only members that exist.
            let read = try await client.scim(.get, "Groups/\(gid)")
            #expect(read["members"]?.arrayValue?.count == 1)
            let filtered = try await client.scim(.get, "Groups?filter=" + #"members.value eq "okta-00u1001""#.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)
            #expect(filtered.totalResults == 0, "\(filtered.text)")

            // The User arrives with the identity provider's id as its externalId.
            let alice = try await client.createUser("alice", extra: #","externalId":"okta-00u1001""# + supportUser)
            let aid = try #require(alice.id)
            #expect(try await world.grants(of: "alice") == ["tickets:read zendesk:queue/Support", "tickets:write zendesk:queue/Support"])
            #expect(try await world.store.identity(userName: "alice")?.groups == ["support"])
            #expect(alice["groups"]?.arrayValue?.first?["value"]?.stringValue == gid)

            let resolved = try await client.scim(.get, "Groups/\(gid)")
            #expect(resolved["members"] == [
                ["value": .string(carol.id!), "$ref": .string("http://localhost/scim/v2/Users/\(carol.id!)"), "type": "User"],
                ["value": .string(aid), "$ref": .string("http://localhost/scim/v2/Users/\(aid)"), "type": "User", "display": "alice"],
            ])
            #expect(resolved.etag != read.etag)
            #expect(try await world.store.scimGroups(awaitingMember: ["okta-00u1001", aid]).isEmpty)
        }
    }

    @Test func aPendingMemberRemovedBeforeItsUserArrivesIsForgotten() async throws {
        let world = try World()
        try await world.withRouter { client in
            try await client.createUser("jdoe")
            let group = try await client.createGroup("support")
            let gid = try #require(group.id)
            let added = try await client.patch(
                "Groups/\(gid)", #"[{"op":"add","path":"members","value":[{"value":"ext-1"},{"value":"ext-2"}]}]"#)
            #expect(added.status == 200, "\(added.text)")
            #expect(added["members"] == nil)
            #expect(try await world.store.scimGroups(awaitingMember: ["ext-1", "ext-2"]).map(\.id) == [gid])

            let removed = try await client.patch("Groups/\(gid)", #"[{"op":"remove","path":"members[value eq \"ext-1\"]"}]"#)
            #expect(removed.status == 200, "\(removed.text)")
            #expect(try await world.store.scimGroups(awaitingMember: ["ext-1"]).isEmpty)

            // ext-1 arrives and joins nothing; ext-2 arrives and joins the Group.
            _ = try await client.createUser("bob", extra: #","externalId":"ext-1""# + supportUser.replacingOccurrences(of: "1001", with: "1002").replacingOccurrences(of: "alice@", with: "bob@"))
            #expect(try await world.grants(of: "bob").isEmpty)
            let dave = try await client.createUser("dave", extra: #","externalId":"ext-2""#)
            #expect(try await client.scim(.get, "Groups/\(gid)")["members"]?.arrayValue?.compactMap { $0["value"]?.stringValue } == [dave.id!])
            #expect(try await world.store.identity(userName: "dave")?.groups == ["support"])
        }
    }

    @Test func aUserWhoseExternalIdChangesToAPendingValueJoins() async throws {
        let world = try World()
        try await world.withRouter { client in
            try await client.createUser("jdoe")
            let alice = try await client.createUser("alice", extra: supportUser)
            let aid = try #require(alice.id)
            _ = try await client.scim(
                .post, "Groups", #"{"schemas":["\#(Self.groupSchema)"],"displayName":"support","members":[{"value":"hr-42"}]}"#)
            #expect(try await world.grants(of: "alice").isEmpty)
            let patched = try await client.patch("Users/\(aid)", #"[{"op":"replace","path":"externalId","value":"hr-42"}]"#)
            #expect(patched.status == 200, "\(patched.text)")
            #expect(try await world.grants(of: "alice").count == 2)
        }
    }

    @Test func deletingAGroupDropsItsPendingMembers() async throws {
        let world = try World()
        try await world.withRouter { client in
            try await client.createUser("jdoe")
            let group = try await client.scim(
                .post, "Groups", #"{"schemas":["\#(Self.groupSchema)"],"displayName":"support","members":[{"value":"later"}]}"#)
            let gid = try #require(group.id)
            #expect(try await client.scim(.delete, "Groups/\(gid)").status == 204)
            #expect(try await world.store.scimGroups(awaitingMember: ["later"]).isEmpty)
            let user = try await client.createUser("erin", extra: #","externalId":"later""#)
            #expect(user["groups"] == nil)
        }
    }
}
