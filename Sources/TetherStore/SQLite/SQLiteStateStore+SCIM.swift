import Foundation
import GRDB
import TetherCore

extension SQLiteStateStore {
    /// Migration `v2: scim resources`: SCIM Users and Groups and the direct memberships of
    /// Groups. userName is unique case-insensitively; the `…Key` columns hold lowercased
    /// copies (Unicode-aware, which SQLite's NOCASE is not) for case-insensitive lookups.
    static func createSCIMTables(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE scim_resources (
                id TEXT PRIMARY KEY NOT NULL,
                kind TEXT NOT NULL CHECK (kind IN ('User', 'Group')),
                userName TEXT,
                userNameKey TEXT UNIQUE,
                displayName TEXT,
                displayNameKey TEXT,
                externalId TEXT,
                version TEXT NOT NULL,
                created TEXT NOT NULL,
                lastModified TEXT NOT NULL,
                body TEXT NOT NULL,
                CHECK ((kind = 'User') = (userNameKey IS NOT NULL))
            );
            CREATE INDEX scim_resources_order ON scim_resources(kind, created, id);
            CREATE INDEX scim_resources_externalId ON scim_resources(kind, externalId);
            CREATE INDEX scim_resources_displayName ON scim_resources(kind, displayNameKey);

            CREATE TABLE scim_members (
                groupId TEXT NOT NULL REFERENCES scim_resources(id) ON DELETE CASCADE,
                memberId TEXT NOT NULL REFERENCES scim_resources(id) ON DELETE CASCADE,
                position INTEGER NOT NULL,
                PRIMARY KEY (groupId, memberId)
            );
            CREATE INDEX scim_members_member ON scim_members(memberId);
            """)
    }

    /// Migration `v6: pending scim members`: member values a Group named before the resource
    /// existed, indexed by value so that the User that arrives later finds its Groups.
    static func createPendingSCIMMembers(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE scim_pending_members (
                groupId TEXT NOT NULL REFERENCES scim_resources(id) ON DELETE CASCADE,
                value TEXT NOT NULL,
                position INTEGER NOT NULL,
                PRIMARY KEY (groupId, value)
            );
            CREATE INDEX scim_pending_members_value ON scim_pending_members(value);
            """)
    }

    private static let columns = "id, kind, userName, displayName, externalId, version, created, lastModified, body"

    private static func record(_ row: Row, members: [String], pending: [String]) throws -> SCIMResourceRecord {
        let kindText: String = row["kind"]
        guard let kind = SCIMResourceKind(rawValue: kindText),
            let created = Timestamp.parse(row["created"]), let lastModified = Timestamp.parse(row["lastModified"])
        else {
            throw StoreError(.corrupt, "stored SCIM resource \(row["id"] as String? ?? "?") cannot be decoded")
        }
        return SCIMResourceRecord(
            id: row["id"], kind: kind, userName: row["userName"], displayName: row["displayName"],
            externalId: row["externalId"], members: members, pendingMembers: pending, version: row["version"], created: created,
            lastModified: lastModified, body: row["body"])
    }

    /// Decodes rows, attaching each Group's members and pending members in the order they
    /// were written.
    private static func records(_ rows: [Row], in db: Database) throws -> [SCIMResourceRecord] {
        let groupIDs = rows.filter { ($0["kind"] as String) == SCIMResourceKind.group.rawValue }.map { $0["id"] as String }
        var members: [String: [String]] = [:]
        var pending: [String: [String]] = [:]
        for chunk in stride(from: 0, to: groupIDs.count, by: 500).map({ Array(groupIDs[$0..<min($0 + 500, groupIDs.count)]) }) {
            let marks = Array(repeating: "?", count: chunk.count).joined(separator: ",")
            for row in try Row.fetchAll(
                db, sql: "SELECT groupId, memberId FROM scim_members WHERE groupId IN (\(marks)) ORDER BY groupId, position",
                arguments: StatementArguments(chunk))
            {
                members[row["groupId"], default: []].append(row["memberId"])
            }
            for row in try Row.fetchAll(
                db, sql: "SELECT groupId, value FROM scim_pending_members WHERE groupId IN (\(marks)) ORDER BY groupId, position",
                arguments: StatementArguments(chunk))
            {
                pending[row["groupId"], default: []].append(row["value"])
            }
        }
        return try rows.map { try record($0, members: members[$0["id"]] ?? [], pending: pending[$0["id"]] ?? []) }
    }

    public func scimResource(id: String) async throws -> SCIMResourceRecord? {
        try await read { db in
            let rows = try Row.fetchAll(db, sql: "SELECT \(Self.columns) FROM scim_resources WHERE id = ?", arguments: [id])
            return try Self.records(rows, in: db).first
        }
    }

    public func scimResources(ids: Set<String>) async throws -> [SCIMResourceRecord] {
        guard !ids.isEmpty else { return [] }
        let all = Array(ids)
        return try await read { db in
            var rows: [Row] = []
            for start in stride(from: 0, to: all.count, by: 500) {
                let chunk = Array(all[start..<min(start + 500, all.count)])
                let marks = Array(repeating: "?", count: chunk.count).joined(separator: ",")
                rows += try Row.fetchAll(
                    db, sql: "SELECT \(Self.columns) FROM scim_resources WHERE id IN (\(marks))", arguments: StatementArguments(chunk))
            }
            return try Self.records(rows, in: db)
        }
    }

    public func scimResources(kind: SCIMResourceKind, offset: Int, limit: Int?) async throws -> [SCIMResourceRecord] {
        try await read { db in
            let rows = try Row.fetchAll(
                db,
                sql: "SELECT \(Self.columns) FROM scim_resources WHERE kind = ? ORDER BY created, id LIMIT ? OFFSET ?",
                arguments: [kind.rawValue, limit ?? -1, max(offset, 0)])
            return try Self.records(rows, in: db)
        }
    }

    public func scimResources(
        kind: SCIMResourceKind, where field: SCIMIndexedField, equals value: String
    ) async throws -> [SCIMResourceRecord] {
        try await read { db in
            let condition: String
            let argument: String
            switch field {
            case .userName: (condition, argument) = ("userNameKey = ?", value.lowercased())
            case .externalId: (condition, argument) = ("externalId = ?", value)
            case .displayName: (condition, argument) = ("displayNameKey = ?", value.lowercased())
            }
            let rows = try Row.fetchAll(
                db, sql: "SELECT \(Self.columns) FROM scim_resources WHERE kind = ? AND \(condition) ORDER BY created, id",
                arguments: [kind.rawValue, argument])
            return try Self.records(rows, in: db)
        }
    }

    public func scimResourceCount(kind: SCIMResourceKind) async throws -> Int {
        try await read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM scim_resources WHERE kind = ?", arguments: [kind.rawValue]) ?? 0
        }
    }

    public func scimGroupGraph() async throws -> [SCIMGroupNode] {
        try await read { db in
            var nodes: [String: SCIMGroupNode] = [:]
            var order: [String] = []
            for row in try Row.fetchAll(
                db, sql: "SELECT id, displayName FROM scim_resources WHERE kind = 'Group' ORDER BY created, id")
            {
                let id: String = row["id"]
                nodes[id] = SCIMGroupNode(id: id, displayName: row["displayName"] ?? "", members: [])
                order.append(id)
            }
            for row in try Row.fetchAll(db, sql: "SELECT groupId, memberId FROM scim_members ORDER BY groupId, position") {
                nodes[row["groupId"] as String]?.members.append(row["memberId"])
            }
            return order.compactMap { nodes[$0] }
        }
    }

    public func scimAncestors(of memberID: String) async throws -> [SCIMAncestor] {
        try await read { db in
            // Depth-bounded so that a cycle of nested Groups ends.
            let rows = try Row.fetchAll(
                db,
                sql: """
                    WITH RECURSIVE up(groupId, depth) AS (
                        SELECT groupId, 1 FROM scim_members WHERE memberId = ?
                        UNION
                        SELECT m.groupId, up.depth + 1 FROM scim_members m JOIN up ON m.memberId = up.groupId WHERE up.depth < 32
                    )
                    SELECT r.id, r.displayName, MIN(up.depth) AS depth FROM up JOIN scim_resources r ON r.id = up.groupId
                    WHERE r.id != ? GROUP BY r.id ORDER BY depth, r.created, r.id
                    """,
                arguments: [memberID, memberID])
            return rows.map { SCIMAncestor(id: $0["id"], displayName: $0["displayName"] ?? "", direct: ($0["depth"] as Int) == 1) }
        }
    }

    public func scimGroups(awaitingMember values: Set<String>) async throws -> [SCIMResourceRecord] {
        guard !values.isEmpty else { return [] }
        let all = Array(values)
        return try await read { db in
            let marks = Array(repeating: "?", count: all.count).joined(separator: ",")
            let rows = try Row.fetchAll(
                db,
                sql: """
                    SELECT \(Self.columns) FROM scim_resources WHERE id IN
                        (SELECT groupId FROM scim_pending_members WHERE value IN (\(marks)))
                    ORDER BY created, id
                    """,
                arguments: StatementArguments(all))
            return try Self.records(rows, in: db)
        }
    }

    @discardableResult
    public func commit(_ write: SCIMWrite, with changesets: [Changeset]) async throws -> CommitReceipt {
        defer { checkpointer.committed() }
        do {
            return try await pool.write { db in
                try Self.apply(write, in: db)
                var sealed: ClosedRange<Int>?
                for changeset in changesets {
                    guard let seqs = try Self.apply(changeset, in: db).auditSeqs else { continue }
                    sealed = sealed.map { $0.lowerBound...seqs.upperBound } ?? seqs
                }
                return CommitReceipt(auditSeqs: sealed)
            }
        } catch let error as StoreError {
            throw error
        } catch let cancelled as CancellationError {
            // A cancelled task's read or write did not happen; that is not a store failure.
            throw cancelled
        } catch let conflict as SCIMWriteConflict {
            throw StoreError(.write, "the SCIM change was not committed; nothing was applied", underlying: conflict)
        } catch {
            throw StoreError(.write, "the SCIM change was not committed; nothing was applied", underlying: error)
        }
    }

    /// Applies a SCIM write inside the caller's transaction, checking expected versions first.
    static func apply(_ write: SCIMWrite, in db: Database) throws {
        for (id, expected) in write.expectedVersions {
            let current = try String.fetchOne(db, sql: "SELECT version FROM scim_resources WHERE id = ?", arguments: [id])
            guard current == expected else { throw SCIMWriteConflict(.changed(id: id)) }
        }
        for id in write.deletions {
            try db.execute(sql: "DELETE FROM scim_resources WHERE id = ?", arguments: [id])
        }
        for record in write.upserts {
            let key = record.kind == .user ? (record.userName ?? "").lowercased() : nil
            if let key, let owner = try String.fetchOne(
                db, sql: "SELECT id FROM scim_resources WHERE userNameKey = ? AND id != ?", arguments: [key, record.id])
            {
                _ = owner
                throw SCIMWriteConflict(.userNameTaken(record.userName ?? ""))
            }
            try db.execute(
                sql: """
                    INSERT INTO scim_resources (id, kind, userName, userNameKey, displayName, displayNameKey, externalId, version,
                        created, lastModified, body)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT(id) DO UPDATE SET userName = excluded.userName, userNameKey = excluded.userNameKey,
                        displayName = excluded.displayName, displayNameKey = excluded.displayNameKey,
                        externalId = excluded.externalId, version = excluded.version,
                        lastModified = excluded.lastModified, body = excluded.body
                    """,
                arguments: [
                    record.id, record.kind.rawValue, record.userName, key, record.displayName,
                    record.displayName?.lowercased(), record.externalId,
                    record.version, time(record.created), time(record.lastModified), record.body,
                ])
        }
        // Memberships after every resource exists, so a write may add a Group and its members together.
        for record in write.upserts where record.kind == .group {
            try db.execute(sql: "DELETE FROM scim_members WHERE groupId = ?", arguments: [record.id])
            for (position, member) in record.members.enumerated() {
                try db.execute(
                    sql: "INSERT INTO scim_members (groupId, memberId, position) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                    arguments: [record.id, member, position])
            }
            try db.execute(sql: "DELETE FROM scim_pending_members WHERE groupId = ?", arguments: [record.id])
            for (position, value) in record.pendingMembers.enumerated() {
                try db.execute(
                    sql: "INSERT INTO scim_pending_members (groupId, value, position) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                    arguments: [record.id, value, position])
            }
        }
    }
}
