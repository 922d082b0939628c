import Foundation
import GRDB
import Testing
import TetherCore
import TetherStore

/// The SQLite side of SCIM: the migration, optimistic versions, userName uniqueness and the
/// one transaction shared with the lifecycle changesets.
@Suite struct SCIMStoreTests {
    private func record(_ id: String, kind: SCIMResourceKind = .user, userName: String? = nil, version: String = "v1", members: [String] = []) -> SCIMResourceRecord {
        let now = Date(timeIntervalSince1970: 1_795_000_000)
        return SCIMResourceRecord(
            id: id, kind: kind, userName: kind == .user ? (userName ?? id) : nil, displayName: kind == .group ? id : nil,
            members: members, version: version, created: now, lastModified: now, body: "{}")
    }

    private func auditOnly(_ reason: String) -> Changeset {
        var changeset = Changeset(time: Date(timeIntervalSince1970: 1_795_000_000))
        changeset.audit.append(AuditEntry(action: .resyncRequested, actor: .scim, time: changeset.time, fields: ["reason": reason]))
        return changeset
    }

    @Test func migrationIsNamedAndAppended() async throws {
        let world = try World()
        defer { world.remove() }
        let names = try await DatabaseQueue(path: world.store.path).read { db in
            try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations ORDER BY rowid")
        }
        #expect(names.last == "v2: scim resources")
        #expect(names.count >= 2)
    }

    @Test func writesCommitWithTheirChangesetsOrNotAtAll() async throws {
        let world = try World()
        defer { world.remove() }
        let store = world.store
        try await store.commit(
            SCIMWrite(upserts: [record("u1"), record("g1", kind: .group, members: ["u1"])], expectedVersions: ["u1": nil, "g1": nil]),
            with: [auditOnly("first")])
        #expect(try await store.scimResource(id: "g1")?.members == ["u1"])
        #expect(try await store.scimGroupGraph() == [SCIMGroupNode(id: "g1", displayName: "g1", members: ["u1"])])
        #expect(try await store.auditRecords(AuditQuery()).count == 1)

        // A stale expected version refuses the write and its changesets.
        await #expect(throws: StoreError.self) {
            try await store.commit(SCIMWrite(upserts: [record("u1", version: "v2")], expectedVersions: ["u1": "v0"]), with: [auditOnly("stale")])
        }
        do {
            try await store.commit(SCIMWrite(upserts: [record("u1", version: "v2")], expectedVersions: ["u1": "v0"]), with: [])
        } catch let error as StoreError {
            #expect(error.code == .write)
            #expect((error.underlying as? SCIMWriteConflict)?.reason == .changed(id: "u1"))
        }
        #expect(try await store.scimResource(id: "u1")?.version == "v1")
        #expect(try await store.auditRecords(AuditQuery()).count == 1)

        // userName is unique without regard to case.
        do {
            try await store.commit(SCIMWrite(upserts: [record("u2", userName: "U1")], expectedVersions: ["u2": nil]), with: [auditOnly("dup")])
            Issue.record("a duplicate userName was stored")
        } catch let error as StoreError {
            #expect((error.underlying as? SCIMWriteConflict)?.reason == .userNameTaken("U1"))
        }
        #expect(try await store.scimResourceCount(kind: .user) == 1)

        // Deleting a member removes its memberships.
        try await store.commit(SCIMWrite(deletions: ["u1"], expectedVersions: ["u1": "v1"]), with: [])
        #expect(try await store.scimGroupGraph().first?.members == [])
    }

    @Test func ancestorsFollowNestingAndSurviveCycles() async throws {
        let world = try World()
        defer { world.remove() }
        let store = world.store
        try await store.commit(
            SCIMWrite(upserts: [
                record("u1"), record("team", kind: .group, members: ["u1"]), record("dept", kind: .group, members: ["team", "u1"]),
                record("org", kind: .group, members: ["dept"]), record("loop", kind: .group, members: ["org"]),
            ]), with: [])
        // org and loop contain each other.
        try await store.commit(SCIMWrite(upserts: [record("org", kind: .group, members: ["dept", "loop"])]), with: [])
        let ancestors = try await store.scimAncestors(of: "u1")
        #expect(ancestors.map(\.id) == ["dept", "team", "org", "loop"])  // same created time: by id
        #expect(ancestors.map(\.direct) == [true, true, false, false])
        #expect(try await store.scimAncestors(of: "org").map(\.id) == ["loop"])
    }

    @Test func indexedLookups() async throws {
        let world = try World()
        defer { world.remove() }
        let store = world.store
        var user = record("u1", userName: "Ärger")
        user.externalId = "E1"
        try await store.commit(SCIMWrite(upserts: [user, record("Straße", kind: .group)]), with: [])
        #expect(try await store.scimResources(kind: .user, where: .userName, equals: "ärger").map(\.id) == ["u1"])
        #expect(try await store.scimResources(kind: .user, where: .externalId, equals: "E1").map(\.id) == ["u1"])
        #expect(try await store.scimResources(kind: .user, where: .externalId, equals: "e1").isEmpty)
        #expect(try await store.scimResources(kind: .group, where: .displayName, equals: "STRASSE").isEmpty)
        #expect(try await store.scimResources(kind: .group, where: .displayName, equals: "straße").map(\.id) == ["Straße"])
        #expect(try await store.scimResources(ids: ["u1", "Straße", "nope"]).count == 2)
        try await store.commit(SCIMWrite(upserts: [record("Équipe", kind: .group)]), with: [])
        #expect(try await store.scimResources(kind: .group, where: .displayName, equals: "éQUIPE").map(\.id) == ["Équipe"])
    }
}
