import Foundation
import GRDB
import Hummingbird
import HummingbirdTesting
import Testing
import TetherCore
import TetherStore
@testable import TetherSCIM

/// What the store holds, to show that a refused request stored nothing.
private struct Snapshot: Equatable {
    var users: Int
    var groups: Int
    var identities: Int
    var audit: Int
    var bodies: [String]

    init(_ world: World) async throws {
        users = try await world.store.scimResourceCount(kind: .user)
        groups = try await world.store.scimResourceCount(kind: .group)
        identities = try await world.store.identities(status: nil).count
        audit = try await world.store.auditRecords(AuditQuery()).count
        bodies = try await world.store.scimResources(kind: .user, offset: 0, limit: nil).map { $0.body + $0.version }
            + world.store.scimResources(kind: .group, offset: 0, limit: nil).map { $0.body + $0.version }
    }
}

/// Every error status and `scimType` the SCIM endpoint answers, and that nothing is stored.
@Suite struct SCIMRouterErrorTests {
    @Test func missingOrWrongTokenIs401WithAChallenge() async throws {
        let world = try World()
        try await world.withRouter { client in
            for (token, detail) in [(nil, "a bearer token is required"), ("wrong", "not valid"), ("", "a bearer token is required")] as [(String?, String)] {
                let reply = try await client.scim(.get, "Users", token: token)
                #expect(reply.status == 401)
                #expect(reply.headers[.wwwAuthenticate] == #"Bearer realm="tether-scim""#)
                #expect(reply.contentType == "application/scim+json")
                #expect(reply["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"])
                #expect(reply["status"] == "401")
                #expect(reply["detail"]?.stringValue?.contains(detail) == true, "\(reply.text)")
            }
            let basic = try await client.scim(.get, "ServiceProviderConfig", token: nil, headers: [.authorization: "Basic dXNlcjpwYXNz"])
            #expect(basic.status == 401)
            let post = try await client.scim(.post, "Users", #"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"x"}"#, token: "wrong")
            #expect(post.status == 401)
            #expect(try await world.store.scimResourceCount(kind: .user) == 0)
            let lowercase = try await client.scim(.get, "Users", token: nil, headers: [.authorization: "bearer \(World.token)"])
            #expect(lowercase.status == 200)
        }
        #expect(!world.logs.lines.joined(separator: "\n").contains(World.token))
    }

    @Test func badJSONIsInvalidSyntaxSayingWhere() async throws {
        let world = try World()
        try await world.withRouter { client in
            let before = try await Snapshot(world)
            let reply = try await client.scim(.post, "Users", "{\"schemas\":[\"urn:ietf:params:scim:schemas:core:2.0:User\"],\n\"userName\":\"x\",}")
            #expect(reply.status == 400)
            #expect(reply.scimType == "invalidSyntax")
            #expect(reply["detail"]?.stringValue?.contains("line 2, column 16") == true, "\(reply.text)")
            #expect(try await client.scim(.post, "Users", "").scimType == "invalidSyntax")
            #expect(try await client.scim(.post, "Users", "[1,2]").scimType == "invalidSyntax")
            #expect(try await Snapshot(world) == before)
        }
    }

    @Test func schemaViolationsAreInvalidValue() async throws {
        let world = try World()
        try await world.withRouter { client in
            let before = try await Snapshot(world)
            let cases: [(String, String)] = [
                (#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"]}"#, "userName is required"),
                (#"{"userName":"x"}"#, "schemas is required"),
                (#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"userName":"x"}"#, "must include urn:ietf:params:scim:schemas:core:2.0:User"),
                (#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"x","active":"sometimes"}"#, "active is a boolean"),
                (#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"x","emails":"x@example.com"}"#, "emails is multi-valued"),
                (#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"x","name":"X"}"#, "name is complex"),
                (#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"x","emails":[{"value":"a","primary":true},{"value":"b","primary":true}]}"#, "at most one value of emails"),
                (#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"x","x509Certificates":[{"value":"not base64!"}]}"#, "base64"),
                (#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"x","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"manager":{"$ref":"x"}}}"#, "manager.value is required"),
            ]
            for (body, detail) in cases {
                let reply = try await client.scim(.post, "Users", body)
                #expect(reply.status == 400, "\(body)")
                #expect(reply.scimType == "invalidValue", "\(reply.text)")
                #expect(reply["detail"]?.stringValue?.contains(detail) == true, "\(reply.text)")
            }
            let group = try await client.scim(
                .post, "Groups", #"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"g","members":[{"display":"no value"}]}"#)
            #expect(group.scimType == "invalidValue")
            #expect(group["detail"]?.stringValue?.contains("members[0].value is required") == true)
            let badCount = try await client.scim(.get, "Users?count=ten")
            #expect(badCount.scimType == "invalidValue")
            let badSort = try await client.scim(.get, "Users?sortBy=shoeSize")
            #expect(badSort.scimType == "invalidValue")
            let both = try await client.scim(.get, "Users?attributes=userName&excludedAttributes=emails")
            #expect(both.scimType == "invalidSyntax")
            #expect(try await Snapshot(world) == before)
        }
    }

    @Test func aBadFilterIsInvalidFilterNeverAnEmptyList() async throws {
        let world = try World()
        try await world.withRouter { client in
            try await client.createUser("alice")
            for filter in ["userName eq", "userName eqq \"a\"", "shoeSize gt 3", "active gt true", "(userName eq \"a\"", "emails[type eq \"work\""] {
                let reply = try await client.scim(.get, "Users?filter=" + filter.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)
                #expect(reply.status == 400, "\(filter): \(reply.text)")
                #expect(reply.scimType == "invalidFilter", "\(filter): \(reply.text)")
            }
            let search = try await client.scim(.post, "Users/.search", #"{"filter":"userName zz \"a\""}"#)
            #expect(search.scimType == "invalidFilter")
            let root = try await client.scim(.post, ".search", #"{"filter":"shoeSize pr"}"#)
            #expect(root.scimType == "invalidFilter")
            let where_ = try await client.scim(.get, "Users?filter=userName+eq+bob")
            #expect(where_["detail"]?.stringValue?.contains("character 13") == true, "\(where_.text)")
        }
    }

    @Test func patchErrorsAreInvalidPathNoTargetAndMutabilityAndAtomic() async throws {
        let world = try World()
        try await world.withRouter { client in
            let alice = try await client.createUser("alice", extra: supportUser)
            let id = try #require(alice.id)
            let group = try await client.createGroup("support", members: [id])
            let before = try await Snapshot(world)
            let cases: [(String, String, String)] = [
                ("Users/\(id)", #"[{"op":"replace","path":"shoeSize","value":"9"}]"#, "invalidPath"),
                ("Users/\(id)", #"[{"op":"replace","path":"emails[type eq","value":"x"}]"#, "invalidPath"),
                ("Users/\(id)", #"[{"op":"remove"}]"#, "noTarget"),
                ("Users/\(id)", #"[{"op":"replace","path":"displayName","value":"A"},{"op":"remove","path":"emails[type eq \"fax\"]"}]"#, "noTarget"),
                ("Users/\(id)", #"[{"op":"add","path":"groups","value":[{"value":"\#(group.id!)"}]}]"#, "mutability"),
                ("Users/\(id)", #"[{"op":"remove","path":"userName"}]"#, "invalidValue"),
                ("Users/\(id)", #"[{"op":"jump","path":"title","value":"x"}]"#, "invalidSyntax"),
                ("Users/\(id)", #"{"Operations":[]}"#, "invalidSyntax"),
                ("Groups/\(group.id!)", #"[{"op":"replace","path":"members[value eq \"\#(id)\"].value","value":"other"}]"#, "mutability"),
                ("Groups/\(group.id!)", #"[{"op":"add","path":"members","value":[{"value":"\#(group.id!)"}]}]"#, "invalidValue"),
            ]
            for (path, operations, scimType) in cases {
                let reply = operations.hasPrefix("{")
                    ? try await client.scim(.patch, path, operations)
                    : try await client.patch(path, operations)
                #expect(reply.status == 400, "\(operations): \(reply.text)")
                #expect(reply.scimType == scimType, "\(operations): \(reply.text)")
            }
            #expect(try await Snapshot(world) == before)
        }
    }

    @Test func duplicateUserNameIs409Uniqueness() async throws {
        let world = try World()
        try await world.withRouter { client in
            try await client.createUser("alice")
            let bob = try await client.createUser("bob")
            let before = try await Snapshot(world)
            let duplicate = try await client.scim(.post, "Users", #"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ALICE"}"#)
            #expect(duplicate.status == 409)
            #expect(duplicate.scimType == "uniqueness")
            let renamed = try await client.patch("Users/\(bob.id!)", #"[{"op":"replace","path":"userName","value":"Alice"}]"#)
            #expect(renamed.status == 409 && renamed.scimType == "uniqueness")
            let replaced = try await client.scim(.put, "Users/\(bob.id!)", #"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"alice"}"#)
            #expect(replaced.status == 409 && replaced.scimType == "uniqueness")
            #expect(try await Snapshot(world) == before)
            // A User may change the case of its own userName.
            let own = try await client.patch("Users/\(bob.id!)", #"[{"op":"replace","path":"userName","value":"BOB"}]"#)
            #expect(own.status == 200)
        }
    }

    @Test func staleIfMatchIs412() async throws {
        let world = try World()
        try await world.withRouter { client in
            let alice = try await client.createUser("alice")
            let id = try #require(alice.id)
            let etag = try #require(alice.etag)
            world.clock.advance(by: 1)
            let changed = try await client.patch("Users/\(id)", #"[{"op":"add","path":"title","value":"Boss"}]"#, headers: [.ifMatch: etag])
            #expect(changed.status == 200)
            let before = try await Snapshot(world)
            let stale = try await client.patch("Users/\(id)", #"[{"op":"add","path":"title","value":"Intern"}]"#, headers: [.ifMatch: etag])
            #expect(stale.status == 412)
            #expect(stale["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"])
            let put = try await client.scim(
                .put, "Users/\(id)", #"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"alice"}"#, headers: [.ifMatch: etag])
            #expect(put.status == 412)
            let delete = try await client.scim(.delete, "Users/\(id)", headers: [.ifMatch: #"W/"nope", W/"other""#])
            #expect(delete.status == 412)
            #expect(try await Snapshot(world) == before)
            let any = try await client.patch("Users/\(id)", #"[{"op":"add","path":"title","value":"Intern"}]"#, headers: [.ifMatch: "*"])
            #expect(any.status == 200)
            let list = try await client.scim(.delete, "Users/\(id)", headers: [.ifMatch: #"W/"nope", \#(any.etag!)"#])
            #expect(list.status == 204)
        }
    }

    @Test func tooLargeIs413AndNothingIsStored() async throws {
        let world = try World(maxBodyBytes: 512)
        try await world.withRouter { client in
            let big = #"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"alice","title":"\#(String(repeating: "x", count: 600))"}"#
            let reply = try await client.scim(.post, "Users", big)
            #expect(reply.status == 413)
            #expect(reply["status"] == "413")
            #expect(reply.contentType == "application/scim+json")
            #expect(try await world.store.scimResourceCount(kind: .user) == 0)
            let alice = try await client.createUser("alice")
            let patch = try await client.patch("Users/\(alice.id!)", #"[{"op":"add","path":"title","value":"\#(String(repeating: "y", count: 600))"}]"#)
            #expect(patch.status == 413)
            #expect(try await client.scim(.get, "Users/\(alice.id!)")["title"] == nil)
        }
    }

    @Test func unknownResourcesAndEndpointsAre404() async throws {
        let world = try World()
        try await world.withRouter { client in
            let alice = try await client.createUser("alice")
            let group = try await client.createGroup("g")
            for (method, path) in [
                (HTTPRequest.Method.get, "Users/nobody"), (.put, "Users/nobody"), (.patch, "Users/nobody"), (.delete, "Users/nobody"),
                (.get, "Groups/\(alice.id!)"), (.get, "Users/\(group.id!)"), (.get, "Devices"), (.post, "Users/\(alice.id!)/extra"),
                (.get, "/scim/v2/\(UUID().uuidString)"),
            ] {
                let body: String? = [.put, .patch, .post].contains(method)
                    ? #"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp","urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"x","Operations":[{"op":"add","path":"title","value":"x"}]}"#
                    : nil
                let reply = try await client.scim(method, path, body)
                #expect(reply.status == 404, "\(method) \(path): \(reply.text)")
                #expect(reply["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"])
                #expect(reply.contentType == "application/scim+json")
            }
        }
    }

    @Test func unsupportedMethodsAre405AndBulkIs501() async throws {
        let world = try World()
        try await world.withRouter { client in
            for (method, path) in [
                (HTTPRequest.Method.post, "ServiceProviderConfig"), (.put, "ResourceTypes"), (.patch, "Schemas"), (.delete, "Schemas/x"),
                (.delete, "Users"), (.put, "Groups"), (.post, "Users/some-id"), (.get, ".search"), (.get, "Users/.search"),
            ] {
                let reply = try await client.scim(method, path, method == .get || method == .delete ? nil : "{}")
                #expect(reply.status == 405, "\(method) \(path)")
                #expect(reply["status"] == "405")
                #expect(reply.headers[.allow] != nil)
            }
            let bulk = try await client.scim(.post, "Bulk", "{}")
            #expect(bulk.status == 501)
            #expect(bulk["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"])
        }
    }

    @Test func aStoreThatCannotWriteIs503AndNothingIsHalfApplied() async throws {
        let world = try World()
        try await world.withRouter { client in
            try await client.createUser("jdoe")
            let alice = try await client.createUser("alice", extra: supportUser)
            let group = try await client.createGroup("support", members: [alice.id!])
            #expect(try await world.grants(of: "alice").count == 2)
            let before = try await Snapshot(world)
            // Another connection makes every SCIM write fail inside the transaction, as a full
            // disk would: after the identity and grant rows of the same transaction were written.
            let database = try DatabaseQueue(path: world.store.path)
            try await database.write { db in
                try db.execute(sql: """
                    CREATE TRIGGER scim_write_fails BEFORE UPDATE ON scim_resources
                    BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;
                    CREATE TRIGGER scim_insert_fails BEFORE INSERT ON scim_resources
                    BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;
                    """)
            }
            let suspend = try await client.patch("Users/\(alice.id!)", #"[{"op":"replace","path":"active","value":false}]"#)
            #expect(suspend.status == 503)
            #expect(suspend["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"])
            let create = try await client.createUserExpectingFailure("bob")
            #expect(create.status == 503)
            let removeMember = try await client.patch("Groups/\(group.id!)", #"[{"op":"remove","path":"members"}]"#)
            #expect(removeMember.status == 503)
            #expect(try await Snapshot(world) == before)
            #expect(try await world.grants(of: "alice").count == 2)
            #expect(try await world.store.identity(userName: "alice")?.status == .active)
            #expect(world.engine.index.decide(CheckRequest(
                subject: "alice", agent: "support-copilot", scope: "tickets:read", resource: "zendesk:queue/Support")).allowed)
            // The service keeps serving once the store can write again.
            try await database.write { db in
                try db.execute(sql: "DROP TRIGGER scim_write_fails; DROP TRIGGER scim_insert_fails;")
            }
            let retried = try await client.patch("Users/\(alice.id!)", #"[{"op":"replace","path":"active","value":false}]"#)
            #expect(retried.status == 200)
            #expect(try await world.grants(of: "alice").isEmpty)
            #expect(!world.engine.index.decide(CheckRequest(
                subject: "alice", agent: "support-copilot", scope: "tickets:read", resource: "zendesk:queue/Support")).allowed)
        }
    }

    @Test func concurrentWritesDoNotLoseUpdates() async throws {
        let world = try World()
        try await world.withRouter { client in
            let group = try await client.createGroup("crowd")
            var ids: [String] = []
            for index in 0..<20 { ids.append(try await client.createUser("user\(index)").id!) }
            try await withThrowingTaskGroup(of: Int.self) { tasks in
                for id in ids {
                    tasks.addTask {
                        try await client.patch("Groups/\(group.id!)", #"[{"op":"add","path":"members","value":[{"value":"\#(id)"}]}]"#).status
                    }
                }
                for try await status in tasks { #expect(status == 200) }
            }
            let final = try await client.scim(.get, "Groups/\(group.id!)")
            #expect(final["members"]?.arrayValue?.count == 20)
        }
    }
}

extension TestClientProtocol {
    func createUserExpectingFailure(_ userName: String) async throws -> Reply {
        try await scim(.post, "Users", #"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"\#(userName)"}"#)
    }
}
