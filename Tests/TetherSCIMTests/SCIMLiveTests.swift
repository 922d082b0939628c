import Foundation
import GRDB
import Hummingbird
import HummingbirdTesting
import Testing
import TetherCore
import TetherStore
@testable import TetherSCIM

private let enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

/// Each feature once more over a real loopback socket (HTTP/1.1, real headers and bodies).
@Suite struct SCIMLiveTests {
    @Test func authenticationOverTheWire() async throws {
        let world = try World()
        try await world.withLiveServer { client in
            let refused = try await client.scim(.get, "Users", token: "nope")
            #expect(refused.status == 401)
            #expect(refused.headers[.wwwAuthenticate] == #"Bearer realm="tether-scim""#)
            #expect(refused["status"] == "401")
            #expect(try await client.scim(.get, "Users").status == 200)
        }
    }

    @Test func userLifecycleOverTheWire() async throws {
        let world = try World()
        try await world.withLiveServer { client in
            try await client.createUser("jdoe")
            let alice = try await client.createUser("alice", extra: supportUser)
            let id = try #require(alice.id)
            #expect(alice.headers[.location]?.hasPrefix("http://localhost") == true)
            try await client.createGroup("support", members: [id])
            #expect(try await world.grants(of: "alice").count == 2)
            let put = try await client.scim(
                .put, "Users/\(id)",
                #"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","\#(enterprise)"],"userName":"alice","active":true,"\#(enterprise)":{"department":"Success"}}"#)
            #expect(put.status == 200)
            #expect(try await world.grants(of: "alice") == ["tickets:read zendesk:queue/Success", "tickets:write zendesk:queue/Success"])
            let suspended = try await client.patch("Users/\(id)", #"[{"op":"Replace","path":"active","value":"False"}]"#)
            #expect(suspended.status == 200)
            #expect(try await world.grants(of: "alice").isEmpty)
            let deleted = try await client.scim(.delete, "Users/\(id)")
            #expect(deleted.status == 204)
            #expect(try await world.store.identity(userName: "alice")?.status == .terminated)
            #expect(try await client.scim(.get, "Users/\(id)").status == 404)
        }
    }

    @Test func groupMembershipOverTheWire() async throws {
        let world = try World(maxBodyBytes: 1 << 20)
        try await world.withLiveServer { client in
            try await client.createUser("jdoe")
            var ids: [String] = []
            for index in 0..<40 {
                ids.append(try await client.createUser("agent\(index)", extra: #","\#(enterprise)":{"department":"Support"}"#).id!)
            }
            let group = try await client.createGroup("support")
            let members = ids.map { #"{"value":"\#($0)"}"# }.joined(separator: ",")
            let added = try await client.patch("Groups/\(group.id!)", #"[{"op":"add","path":"members","value":[\#(members)]}]"#)
            #expect(added.status == 200)
            #expect(try await world.store.grantCount() == 80)
            let removed = try await client.patch("Groups/\(group.id!)", #"[{"op":"Remove","path":"members","value":[{"value":"\#(ids[0])"}]}]"#)
            #expect(removed["members"]?.arrayValue?.count == 39)
            #expect(try await world.grants(of: "agent0").isEmpty)
            #expect(try await client.scim(.delete, "Groups/\(group.id!)").status == 204)
            #expect(try await world.store.grantCount() == 0)
        }
    }

    @Test func filtersAndPagingOverTheWire() async throws {
        let world = try World()
        try await world.withLiveServer { client in
            for name in ["ann", "ben", "cat"] {
                try await client.createUser(name, extra: #","emails":[{"value":"\#(name)@example.com","type":"work"}]"#)
            }
            let filter = "emails[type eq \"work\" and value ew \"example.com\"] and not (userName eq \"ben\")"
                .addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            let reply = try await client.scim(.get, "Users?filter=\(filter)&sortBy=userName&sortOrder=descending&count=1&startIndex=2")
            #expect(reply.status == 200)
            #expect(reply.totalResults == 2)
            #expect(reply.resources.compactMap { $0["userName"]?.stringValue } == ["ann"])
            let bad = try await client.scim(.get, "Users?filter=userName+eq")
            #expect(bad.status == 400 && bad.scimType == "invalidFilter")
        }
    }

    @Test func projectionAndSearchOverTheWire() async throws {
        let world = try World()
        try await world.withLiveServer { client in
            let alice = try await client.createUser("alice", extra: supportUser)
            let one = try await client.scim(.get, "Users/\(alice.id!)?attributes=emails.value")
            #expect(one.json?.objectValue?.names == ["schemas", "id", "emails"])
            let search = try await client.scim(
                .post, ".search", #"{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],"filter":"userName eq \"alice\"","excludedAttributes":["emails","meta"]}"#)
            #expect(search.totalResults == 1)
            #expect(search.resources.first?["emails"] == nil)
            #expect(search.resources.first?["userName"] == "alice")
        }
    }

    @Test func patchOverTheWireIsAtomic() async throws {
        let world = try World()
        try await world.withLiveServer { client in
            let alice = try await client.createUser("alice", extra: supportUser)
            let id = try #require(alice.id)
            let failed = try await client.patch("Users/\(id)", #"[{"op":"add","path":"title","value":"Boss"},{"op":"replace","path":"emails[type eq \"fax\"]","value":{"value":"x"}}]"#)
            #expect(failed.status == 400 && failed.scimType == "noTarget")
            #expect(try await client.scim(.get, "Users/\(id)")["title"] == nil)
            let entra = try await client.patch("Users/\(id)", #"""
                [{"op":"Add","path":"emails[type eq \"home\"].value","value":"alice@home.example"},
                 {"op":"Replace","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager","value":"boss-id"}]
                """#)
            #expect(entra.status == 200)
            #expect(entra["emails"]?.arrayValue?.count == 2)
            #expect(entra[enterprise]?["manager"] == ["value": "boss-id"])
        }
    }

    @Test func etagsAndIfMatchOverTheWire() async throws {
        let world = try World()
        try await world.withLiveServer { client in
            let alice = try await client.createUser("alice")
            let etag = try #require(alice.etag)
            world.clock.advance(by: 1)
            let first = try await client.patch("Users/\(alice.id!)", #"[{"op":"add","path":"title","value":"A"}]"#, headers: [.ifMatch: etag])
            #expect(first.status == 200)
            #expect(first.etag != etag)
            let second = try await client.patch("Users/\(alice.id!)", #"[{"op":"add","path":"title","value":"B"}]"#, headers: [.ifMatch: etag])
            #expect(second.status == 412)
            let notModified = try await client.scim(.get, "Users/\(alice.id!)", headers: [.ifNoneMatch: first.etag!])
            #expect(notModified.status == 304)
        }
    }

    @Test func uniquenessOverTheWire() async throws {
        let world = try World()
        try await world.withLiveServer { client in
            try await client.createUser("alice")
            let duplicate = try await client.scim(.post, "Users", #"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"Alice"}"#)
            #expect(duplicate.status == 409 && duplicate.scimType == "uniqueness")
        }
    }

    @Test func sizeLimitOverTheWire() async throws {
        let world = try World(maxBodyBytes: 1024)
        try await world.withLiveServer { client in
            let big = #"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"\#(String(repeating: "a", count: 4096))"}"#
            let reply = try await client.scim(.post, "Users", big)
            #expect(reply.status == 413)
            #expect(reply["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"])
            #expect(try await world.store.scimResourceCount(kind: .user) == 0)
            #expect(try await client.scim(.get, "Users").status == 200)
        }
    }

    @Test func discoveryOverTheWire() async throws {
        let world = try World(baseURL: "https://tether.example.com/scim/v2/")
        try await world.withLiveServer { client in
            let config = try await client.scim(.get, "ServiceProviderConfig")
            #expect(config["meta"]?["location"] == "https://tether.example.com/scim/v2/ServiceProviderConfig")
            #expect(try await client.scim(.get, "ResourceTypes").totalResults == 3)
            #expect(try await client.scim(.get, "Schemas").totalResults == 5)
            #expect(try await client.scim(.post, "Schemas", "{}").status == 405)
            let alice = try await client.createUser("alice")
            #expect(alice.headers[.location] == "https://tether.example.com/scim/v2/Users/\(alice.id!)")
        }
    }

    @Test func errorsAreSCIMJSONOverTheWire() async throws {
        let world = try World()
        try await world.withLiveServer { client in
            for (method, path, body) in [
                (HTTPRequest.Method.get, "Nowhere", nil), (.delete, "Users", nil), (.post, "Users", "{not json"),
                (.post, "Bulk", "{}"),
            ] as [(HTTPRequest.Method, String, String?)] {
                let reply = try await client.scim(method, path, body)
                #expect(reply.status >= 400)
                #expect(reply.contentType == "application/scim+json")
                #expect(reply["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"], "\(reply.text)")
            }
        }
    }

    @Test func storeFailureOverTheWireIs503() async throws {
        let world = try World()
        try await world.withLiveServer { client in
            let database = try DatabaseQueue(path: world.store.path)
            try await database.write { db in
                try db.execute(sql: "CREATE TRIGGER no_space BEFORE INSERT ON scim_resources BEGIN SELECT RAISE(ABORT, 'disk full'); END;")
            }
            let reply = try await client.createUserExpectingFailure("alice")
            #expect(reply.status == 503)
            #expect(try await world.store.identities(status: nil).isEmpty)
            try await database.write { db in try db.execute(sql: "DROP TRIGGER no_space") }
            #expect(try await client.createUserExpectingFailure("alice").status == 201)
        }
    }
}
