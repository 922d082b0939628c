import Foundation
import HummingbirdTesting
import Testing
import TetherCore
import TetherStore
@testable import TetherSCIM

private let enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

/// In-process router tests: every endpoint, what it answers and what it changes.
@Suite struct SCIMRouterTests {
    // MARK: Users

    @Test func createsAUserAsAJoiner() async throws {
        let world = try World()
        try await world.withRouter { client in
            let reply = try await client.createUser("alice", extra: supportUser + #","password":"hunter2","id":"chosen","groups":[{"value":"x"}]"#)
            let id = try #require(reply.id)
            #expect(id != "chosen")
            #expect(reply.contentType == "application/scim+json")
            #expect(reply.headers[.location] == "http://localhost/scim/v2/Users/\(id)")
            #expect(reply.etag == reply["meta"]?["version"]?.stringValue)
            #expect(reply.etag?.hasPrefix("W/\"") == true)
            #expect(reply["meta"]?["resourceType"] == "User")
            #expect(reply["meta"]?["location"]?.stringValue == reply.headers[.location])
            #expect(reply["meta"]?["created"] == "2026-11-18T11:06:40.000Z")
            #expect(reply["password"] == nil)
            #expect(reply["groups"] == nil)
            #expect(reply["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:User", .string(enterprise)])
            #expect(reply[enterprise]?["department"] == "Support")

            let identity = try #require(try await world.store.identity(userName: "alice"))
            #expect(identity.status == .active)
            #expect(identity.email == "alice@example.com")
            #expect(identity.department == "Support")
            #expect(identity.employeeNumber == "1001")
            #expect(identity.sources[.scim]?.externalId == id)
            #expect(identity.sources[.scim]?.version == "2026-11-18T11:06:40.000000Z")
            let audit = try await world.store.auditRecords(AuditQuery(subject: "alice"))
            #expect(audit.map(\.action) == ["identity.joined"])
            #expect(audit.first?["actor"] == "scim")
            // The password was neither stored nor logged.
            let stored = try #require(try await world.store.scimResource(id: id))
            #expect(!stored.body.contains("hunter2"))
            #expect(!world.logs.lines.joined().contains("hunter2"))
        }
    }

    @Test func readsOneUserWithETagAndIfNoneMatch() async throws {
        let world = try World()
        try await world.withRouter { client in
            let created = try await client.createUser("alice", extra: supportUser)
            let id = try #require(created.id)
            let reply = try await client.scim(.get, "Users/\(id)")
            #expect(reply.status == 200)
            #expect(reply.json == created.json)
            #expect(reply.etag == created.etag)
            let unchanged = try await client.scim(.get, "Users/\(id)", headers: [.ifNoneMatch: created.etag!])
            #expect(unchanged.status == 304)
            #expect(unchanged.text.isEmpty)
            let changed = try await client.scim(.get, "Users/\(id)", headers: [.ifNoneMatch: #"W/"older""#])
            #expect(changed.status == 200)
            let projected = try await client.scim(.get, "Users/\(id)?attributes=userName,emails.value,\(enterprise):department")
            #expect(projected.json?.objectValue?.names == ["schemas", "id", "userName", "emails", enterprise])
            #expect(projected["emails"] == [["value": "alice@example.com"]])
            #expect(projected[enterprise] == ["department": "Support"])
            let excluded = try await client.scim(.get, "Users/\(id)?excludedAttributes=emails,meta,id")
            #expect(excluded["emails"] == nil)
            #expect(excluded["meta"] == nil)
            #expect(excluded["id"] != nil)  // returned always
            #expect(excluded["userName"] == "alice")
        }
    }

    @Test func listsWithFiltersPagesAndSorting() async throws {
        let world = try World()
        try await world.withRouter { client in
            for (index, name) in ["carol", "alice", "Bob", "dave", "erin"].enumerated() {
                try await client.createUser(name, extra: #","externalId":"E\#(index)","title":"\#(index % 2 == 0 ? "Engineer" : "Manager")""#)
                world.clock.advance(by: 1)
            }
            let all = try await client.scim(.get, "Users")
            #expect(all.status == 200)
            #expect(all["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
            #expect(all.totalResults == 5)
            #expect(all.resources.compactMap { $0["userName"]?.stringValue } == ["carol", "alice", "Bob", "dave", "erin"])

            let page = try await client.scim(.get, "Users?startIndex=2&count=2")
            #expect(page.totalResults == 5)
            #expect(page["startIndex"] == 2)
            #expect(page["itemsPerPage"] == 2)
            #expect(page.resources.compactMap { $0["userName"]?.stringValue } == ["alice", "Bob"])
            let beyond = try await client.scim(.get, "Users?startIndex=9")
            #expect(beyond.totalResults == 5 && beyond.resources.isEmpty)
            let none = try await client.scim(.get, "Users?count=0")
            #expect(none.totalResults == 5 && none.resources.isEmpty)

            let byName = try await client.scim(.get, "Users?filter=userName+eq+%22BOB%22")
            #expect(byName.resources.compactMap { $0["userName"]?.stringValue } == ["Bob"])
            let byExternalId = try await client.scim(.get, "Users?filter=externalId%20eq%20%22E3%22")
            #expect(byExternalId.resources.compactMap { $0["userName"]?.stringValue } == ["dave"])
            let combined = try await client.scim(
                .get, "Users?filter=" + "title eq \"Engineer\" and not (userName sw \"c\")".addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
                    + "&sortBy=userName&sortOrder=descending&startIndex=1&count=10&attributes=userName")
            #expect(combined.totalResults == 2)
            #expect(combined.resources.compactMap { $0["userName"]?.stringValue } == ["erin", "Bob"])
            #expect(combined.resources.first?.objectValue?.names == ["schemas", "id", "userName"])
            let sorted = try await client.scim(.get, "Users?sortBy=userName")
            #expect(sorted.resources.compactMap { $0["userName"]?.stringValue } == ["alice", "Bob", "carol", "dave", "erin"])
            let filteredPage = try await client.scim(.get, "Users?filter=title+eq+%22Engineer%22&startIndex=2&count=1")
            #expect(filteredPage.totalResults == 3)
            #expect(filteredPage.resources.compactMap { $0["userName"]?.stringValue } == ["Bob"])
            let nothing = try await client.scim(.get, "Users?filter=userName+eq+%22nobody%22")
            #expect(nothing.status == 200 && nothing.totalResults == 0)
        }
    }

    @Test func searchesWithPost() async throws {
        let world = try World()
        try await world.withRouter { client in
            let alice = try await client.createUser("alice", extra: supportUser)
            try await client.createUser("bob")
            try await client.createGroup("support", members: [alice.id!])
            let search = #"{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"filter":"userName sw \"a\"","attributes":["userName","groups"],"startIndex":1,"count":10}"#
            let users = try await client.scim(.post, "Users/.search", search)
            #expect(users.status == 200)
            #expect(users.resources.count == 1)
            #expect(users.resources.first?["groups"]?.arrayValue?.first?["display"] == "support")
            let groups = try await client.scim(.post, "Groups/.search", #"{"filter":"members[value eq \"\#(alice.id!)\"]","attributes":["displayName"]}"#)
            #expect(groups.resources.compactMap { $0["displayName"]?.stringValue } == ["support"])
            #expect(groups.resources.first?["members"] == nil)
            let everything = try await client.scim(
                .post, ".search", #"{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"filter":"userName eq \"bob\" or displayName eq \"support\"","excludedAttributes":["meta"]}"#)
            #expect(everything.totalResults == 2)
            #expect(everything.resources.compactMap { $0["meta"] }.isEmpty)
            #expect(everything.resources.compactMap { $0["userName"]?.stringValue ?? $0["displayName"]?.stringValue } == ["bob", "support"])
        }
    }

    @Test func replacesAUserAsAMover() async throws {
        let world = try World()
        try await world.withRouter { client in
            let created = try await client.createUser("alice", extra: supportUser)
            let id = try #require(created.id)
            world.clock.advance(by: 60)
            let reply = try await client.scim(
                .put, "Users/\(id)",
                #"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"alice","displayName":"Alice Liddell","emails":[{"value":"alice@wonderland.example"}]}"#,
                headers: [.ifMatch: created.etag!])
            #expect(reply.status == 200, "\(reply.text)")
            #expect(reply.etag != created.etag)
            #expect(reply.etag! > created.etag!)
            #expect(reply["meta"]?["created"] == created["meta"]?["created"])
            #expect(reply["meta"]?["lastModified"] == "2026-11-18T11:07:40.000Z")
            #expect(reply[enterprise] == nil)  // left out of the PUT: unassigned
            let identity = try #require(try await world.store.identity(userName: "alice"))
            #expect(identity.email == "alice@wonderland.example")
            #expect(identity.displayName == "Alice Liddell")
            #expect(identity.department == nil)
            #expect(try await world.store.auditRecords(AuditQuery(subject: "alice")).map(\.action) == ["identity.joined", "identity.moved"])
            // The same body again changes nothing: no new version, no event.
            let again = try await client.scim(
                .put, "Users/\(id)",
                #"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"alice","displayName":"Alice Liddell","emails":[{"value":"alice@wonderland.example"}]}"#)
            #expect(again.etag == reply.etag)
            #expect(try await world.store.auditRecords(AuditQuery(subject: "alice")).count == 2)
        }
    }

    @Test func suspensionAndDeletionRevokeBeforeAnswering() async throws {
        let world = try World()
        try await world.withRouter { client in
            try await client.createUser("jdoe")
            let alice = try await client.createUser("alice", extra: supportUser)
            let id = try #require(alice.id)
            #expect(try await world.grants(of: "alice").isEmpty)
            let group = try await client.createGroup("support", members: [id])
            #expect(try await world.grants(of: "alice") == ["tickets:read zendesk:queue/Support", "tickets:write zendesk:queue/Support"])

            // Entra suspends with a capitalised op and a string boolean.
            let suspended = try await client.patch("Users/\(id)", #"[{"op":"Replace","path":"active","value":"False"}]"#)
            #expect(suspended.status == 200)
            #expect(suspended["active"] == false)
            #expect(try await world.grants(of: "alice").isEmpty)
            #expect(try await world.store.identity(userName: "alice")?.status == .suspended)

            // Okta reactivates without a path.
            let reactivated = try await client.patch("Users/\(id)", #"[{"op":"replace","value":{"active":true}}]"#)
            #expect(reactivated.status == 200)
            #expect(try await world.grants(of: "alice").count == 2)

            let deleted = try await client.scim(.delete, "Users/\(id)")
            #expect(deleted.status == 204)
            #expect(deleted.text.isEmpty)
            #expect(try await world.grants(of: "alice").isEmpty)
            #expect(try await world.store.identity(userName: "alice")?.status == .terminated)
            #expect(try await client.scim(.get, "Users/\(id)").status == 404)
            let groupAfter = try await client.scim(.get, "Groups/\(group.id!)")
            #expect(groupAfter["members"] == nil)
            #expect(groupAfter.etag != group.etag)

            let actions = try await world.store.auditRecords(AuditQuery(subject: "alice")).map(\.action)
            #expect(actions == [
                "identity.joined", "identity.moved", "grant.granted", "grant.granted", "identity.suspended", "grant.revoked",
                "grant.revoked", "identity.reactivated", "grant.granted", "grant.granted", "identity.terminated", "grant.revoked",
                "grant.revoked",
            ])
            let records = try await world.store.auditRecords(AuditQuery(subject: "alice"))
            #expect(records.allSatisfy { $0["actor"] == "scim" })
        }
    }

    @Test func suspendingTheSponsorQuarantinesItsAgent() async throws {
        let world = try World()
        try await world.withRouter { client in
            let jdoe = try await client.createUser("jdoe")
            let alice = try await client.createUser("alice", extra: supportUser)
            try await client.createGroup("support", members: [alice.id!])
            #expect(try await world.grants(of: "alice").count == 2)
            let reply = try await client.patch("Users/\(jdoe.id!)", #"[{"op":"replace","path":"active","value":false}]"#)
            #expect(reply.status == 200)
            #expect(try await world.grants(of: "alice").isEmpty)
            #expect(try await world.store.agentStates()["support-copilot"]?.quarantined == true)
        }
    }

    @Test func scimCannotReverseAnHRTermination() async throws {
        let world = try World()
        try await world.withRouter { client in
            let alice = try await client.createUser("alice", extra: supportUser)
            let hr = LifecycleEvent(
                id: "evt_hr_1", source: .hr, kind: .leaver, occurredAt: world.clock.now(),
                facts: IdentityFacts(
                    externalId: "H1001", userName: "alice", employeeNumber: "1001", status: .terminated,
                    version: Timestamp.version(world.clock.now())))
            #expect(try await world.engine.submit(hr).status == .applied)
            #expect(try await world.store.identity(userName: "alice")?.status == .terminated)
            world.clock.advance(by: 1)
            // The provisioning system still says active: the identity stays terminated, as lag.
            let reply = try await client.patch("Users/\(alice.id!)", #"[{"op":"replace","value":{"active":true,"title":"Still here"}}]"#)
            #expect(reply.status == 200)
            #expect(try await world.store.identity(userName: "alice")?.status == .terminated)
            #expect(try await world.store.directoryLags().map(\.source) == [.scim])
        }
    }

    @Test func changingTheExternalIdKeepsTheIdentity() async throws {
        let world = try World()
        try await world.withRouter { client in
            let created = try await client.createUser("alice", extra: #","externalId":"E1""#)
            let before = try #require(try await world.store.identity(userName: "alice"))
            #expect(before.sources[.scim]?.externalId == "E1")
            let reply = try await client.patch("Users/\(created.id!)", #"[{"op":"replace","path":"externalId","value":"E2"}]"#)
            #expect(reply["externalId"] == "E2")
            let after = try #require(try await world.store.identity(userName: "alice"))
            #expect(after.id == before.id)
            #expect(after.sources[.scim]?.externalId == "E2")
            #expect(try await world.store.identity(source: .scim, externalId: "E2")?.id == before.id)
            #expect(try await world.store.identities(status: nil).count == 1)
            let removed = try await client.patch("Users/\(created.id!)", #"[{"op":"remove","path":"externalId"}]"#)
            #expect(removed["externalId"] == nil)
            #expect(try await world.store.identity(source: .scim, externalId: created.id!)?.id == before.id)
        }
    }

    @Test func managerIsTheManagersKey() async throws {
        let world = try World()
        try await world.withRouter { client in
            let boss = try await client.createUser("boss", extra: #","externalId":"E1000""#)
            try await client.createUser("alice", extra: #","\#(enterprise)":{"manager":{"value":"\#(boss.id!)"}}"#)
            let alice = try #require(try await world.store.identity(userName: "alice"))
            #expect(alice.sources[.scim]?.manager == "E1000")
            #expect(alice.manager == (try await world.store.identity(userName: "boss"))?.id)
        }
    }

    // MARK: Groups

    @Test func groupMembershipChangesAreMoversOfTheMembers() async throws {
        let world = try World()
        try await world.withRouter { client in
            try await client.createUser("jdoe")
            let alice = try await client.createUser("alice", extra: supportUser)
            let bob = try await client.createUser("bob", extra: #","\#(enterprise)":{"department":"Success"}"#)
            let (a, b) = (alice.id!, bob.id!)
            let group = try await client.createGroup("support", members: [a])
            let gid = try #require(group.id)
            #expect(group["members"] == [["value": .string(a), "$ref": .string("http://localhost/scim/v2/Users/\(a)"), "type": "User"]])
            #expect(try await world.grants(of: "alice").count == 2)
            let aliceView = try await client.scim(.get, "Users/\(a)")
            #expect(aliceView["groups"] == [[
                "value": .string(gid), "$ref": .string("http://localhost/scim/v2/Groups/\(gid)"), "display": "support", "type": "direct",
            ]])
            #expect(aliceView.etag != alice.etag)  // its groups changed

            // Okta adds a member; the group's version moves.
            let added = try await client.patch("Groups/\(gid)", #"[{"op":"add","path":"members","value":[{"value":"\#(b)","display":"bob"}]}]"#)
            #expect(added.status == 200)
            #expect(added["members"]?.arrayValue?.count == 2)
            #expect(try await world.grants(of: "bob") == ["tickets:read zendesk:queue/Success", "tickets:write zendesk:queue/Success"])
            #expect(try await world.store.identity(userName: "bob")?.groups == ["support"])

            // Okta removes one with a value filter.
            let removed = try await client.patch("Groups/\(gid)", #"[{"op":"remove","path":"members[value eq \"\#(a)\"]"}]"#)
            #expect(removed["members"]?.arrayValue?.count == 1)
            #expect(try await world.grants(of: "alice").isEmpty)

            // A rename moves every member out of the policy's group.
            let renamed = try await client.patch("Groups/\(gid)", #"[{"op":"Replace","path":"displayName","value":"helpdesk"}]"#)
            #expect(renamed["displayName"] == "helpdesk")
            #expect(try await world.grants(of: "bob").isEmpty)
            #expect(try await world.store.identity(userName: "bob")?.groups == ["helpdesk"])

            // PUT names the group again and replaces its members.
            let replaced = try await client.scim(
                .put, "Groups/\(gid)",
                #"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"support","members":[{"value":"\#(a)"},{"value":"\#(b)"}]}"#)
            #expect(replaced.status == 200)
            #expect(try await world.grants(of: "alice").count == 2)
            #expect(try await world.grants(of: "bob").count == 2)

            let deleted = try await client.scim(.delete, "Groups/\(gid)")
            #expect(deleted.status == 204)
            #expect(try await world.grants(of: "alice").isEmpty)
            #expect(try await world.grants(of: "bob").isEmpty)
            #expect(try await world.store.identity(userName: "alice")?.groups == [])
            #expect(try await client.scim(.get, "Groups/\(gid)").status == 404)
            #expect(try await client.scim(.get, "Users/\(a)")["groups"] == nil)
        }
    }

    @Test func nestedGroupsGiveIndirectMembership() async throws {
        let world = try World()
        try await world.withRouter { client in
            try await client.createUser("jdoe")
            let alice = try await client.createUser("alice", extra: supportUser)
            let tier1 = try await client.createGroup("tier1", members: [alice.id!])
            let support = try await client.createGroup("support", members: [tier1.id!])
            #expect(support["members"]?.arrayValue?.first?["type"] == "Group")
            #expect(try await world.store.identity(userName: "alice")?.groups == ["tier1", "support"])
            #expect(try await world.grants(of: "alice").count == 2)
            let view = try await client.scim(.get, "Users/\(alice.id!)")
            #expect(view["groups"]?.arrayValue?.compactMap { $0["type"]?.stringValue } == ["direct", "indirect"])
            // Taking tier1 out of support is a mover for alice.
            try await client.patch("Groups/\(support.id!)", #"[{"op":"remove","path":"members"}]"#)
            #expect(try await world.grants(of: "alice").isEmpty)
            #expect(try await world.store.identity(userName: "alice")?.groups == ["tier1"])
            // Deleting a nested group removes it from its parents.
            try await client.patch("Groups/\(support.id!)", #"[{"op":"add","path":"members","value":[{"value":"\#(tier1.id!)"}]}]"#)
            #expect(try await world.grants(of: "alice").count == 2)
            #expect(try await client.scim(.delete, "Groups/\(tier1.id!)").status == 204)
            #expect(try await client.scim(.get, "Groups/\(support.id!)")["members"] == nil)
            #expect(try await world.grants(of: "alice").isEmpty)
        }
    }

    @Test func manyMembersInOnePatchCommitTogether() async throws {
        let world = try World(maxBodyBytes: 1 << 20)
        try await world.withRouter { client in
            try await client.createUser("jdoe")
            var ids: [String] = []
            for index in 0..<150 {
                ids.append(try await client.createUser("user\(index)", extra: #","\#(enterprise)":{"department":"Support"}"#).id!)
            }
            let group = try await client.createGroup("support")
            let members = ids.map { #"{"value":"\#($0)"}"# }.joined(separator: ",")
            let reply = try await client.patch("Groups/\(group.id!)", #"[{"op":"Add","path":"members","value":[\#(members)]}]"#)
            #expect(reply.status == 200)
            #expect(reply["members"]?.arrayValue?.count == 150)
            #expect(try await world.store.grantCount() == 300)
            let moved = try await world.store.auditRecords(AuditQuery()).filter { $0.action == "identity.moved" }
            #expect(moved.count == 150)
        }
    }

    @Test func groupsListFilterAndProject() async throws {
        let world = try World()
        try await world.withRouter { client in
            let alice = try await client.createUser("alice")
            try await client.createGroup("Support", members: [alice.id!])
            try await client.createGroup("Sales")
            let filtered = try await client.scim(.get, "Groups?filter=displayName+eq+%22support%22&excludedAttributes=members")
            #expect(filtered.totalResults == 1)
            #expect(filtered.resources.first?["members"] == nil)
            let byMember = try await client.scim(.get, "Groups?filter=members%5Bvalue+eq+%22\(alice.id!)%22%5D&attributes=displayName")
            #expect(byMember.resources.compactMap { $0["displayName"]?.stringValue } == ["Support"])
            let all = try await client.scim(.get, "Groups?sortBy=displayName")
            #expect(all.resources.compactMap { $0["displayName"]?.stringValue } == ["Sales", "Support"])
        }
    }

    // MARK: Discovery

    @Test func discoveryDocumentsSayWhatIsImplemented() async throws {
        let world = try World()
        try await world.withRouter { client in
            let config = try await client.scim(.get, "ServiceProviderConfig")
            #expect(config.status == 200)
            #expect(config["patch"]?["supported"] == true)
            #expect(config["bulk"]?["supported"] == false)
            #expect(config["filter"] == ["supported": true, "maxResults": 1000])
            #expect(config["changePassword"]?["supported"] == false)
            #expect(config["sort"]?["supported"] == true)
            #expect(config["etag"]?["supported"] == true)
            #expect(config["authenticationSchemes"]?.arrayValue?.first?["type"] == "oauthbearertoken")

            let types = try await client.scim(.get, "ResourceTypes")
            #expect(types.resources.compactMap { $0["endpoint"]?.stringValue } == ["/Users", "/Groups", "/Agents"])
            let user = try await client.scim(.get, "ResourceTypes/User")
            #expect(user["schemaExtensions"] == [["schema": .string(enterprise), "required": false]])
            #expect(try await client.scim(.get, "ResourceTypes/Device").status == 404)

            let schemas = try await client.scim(.get, "Schemas")
            #expect(schemas.resources.compactMap { $0["id"]?.stringValue }
                == [
                    "urn:ietf:params:scim:schemas:core:2.0:User", enterprise, "urn:ietf:params:scim:schemas:core:2.0:Group",
                    "urn:ietf:params:scim:schemas:core:2.0:Agent", "urn:ietf:params:scim:schemas:extension:tether:2.0:Agent",
                ])
            let userSchema = try await client.scim(.get, "Schemas/urn:ietf:params:scim:schemas:core:2.0:User")
            let names = userSchema["attributes"]?.arrayValue?.compactMap { $0["name"]?.stringValue } ?? []
            #expect(names.contains("userName") && names.contains("groups") && !names.contains("password"))
            let userName = userSchema["attributes"]?.arrayValue?.first { $0["name"] == "userName" }
            #expect(userName?["uniqueness"] == "server" && userName?["caseExact"] == false && userName?["required"] == true)
            #expect(try await client.scim(.get, "Schemas/urn:example:nothing").status == 404)
        }
    }
}
