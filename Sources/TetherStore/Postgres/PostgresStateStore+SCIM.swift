import Foundation
import PostgresNIO
import TetherCore

extension PostgresStateStore {
    private static let scimColumns = "id, kind, userName, displayName, externalId, version, created, lastModified, body"

    private static func record(_ row: PostgresRandomAccessRow, members: [String], pending: [String]) throws -> SCIMResourceRecord {
        let id: String = try row.get(0)
        guard let kind = SCIMResourceKind(rawValue: try row.get(1)),
            let created = Timestamp.parse(try row.get(6)), let lastModified = Timestamp.parse(try row.get(7))
        else {
            throw StoreError(.corrupt, "stored SCIM resource \(id) cannot be decoded")
        }
        return SCIMResourceRecord(
            id: id, kind: kind, userName: try row.get(2), displayName: try row.get(3), externalId: try row.get(4),
            members: members, pendingMembers: pending, version: try row.get(5), created: created, lastModified: lastModified,
            body: try row.get(8))
    }

    /// Decodes rows, attaching each Group's members and pending members in the order they
    /// were written.
    private static func records(_ rows: [PostgresRandomAccessRow], in session: PostgresSession) throws -> [SCIMResourceRecord] {
        var groupIDs: [String] = []
        for row in rows where try row.get(1, as: String.self) == SCIMResourceKind.group.rawValue { groupIDs.append(try row.get(0)) }
        var members: [String: [String]] = [:]
        var pending: [String: [String]] = [:]
        if !groupIDs.isEmpty {
            for row in try session.query(
                "SELECT groupId, memberId FROM scim_members WHERE groupId = ANY(?) ORDER BY groupId, position", [groupIDs])
            {
                members[try row.get(0), default: []].append(try row.get(1))
            }
            for row in try session.query(
                "SELECT groupId, value FROM scim_pending_members WHERE groupId = ANY(?) ORDER BY groupId, position", [groupIDs])
            {
                pending[try row.get(0), default: []].append(try row.get(1))
            }
        }
        return try rows.map { row in
            let id: String = try row.get(0)
            return try record(row, members: members[id] ?? [], pending: pending[id] ?? [])
        }
    }

    public func scimResource(id: String) async throws -> SCIMResourceRecord? {
        try await read { session in
            try Self.records(try session.query("SELECT \(Self.scimColumns) FROM scim_resources WHERE id = ?", [id]), in: session).first
        }
    }

    public func scimResources(ids: Set<String>) async throws -> [SCIMResourceRecord] {
        guard !ids.isEmpty else { return [] }
        return try await read { session in
            try Self.records(
                try session.query("SELECT \(Self.scimColumns) FROM scim_resources WHERE id = ANY(?)", [Array(ids)]), in: session)
        }
    }

    public func scimResources(kind: SCIMResourceKind, offset: Int, limit: Int?) async throws -> [SCIMResourceRecord] {
        try await read { session in
            let rows = try session.query(
                "SELECT \(Self.scimColumns) FROM scim_resources WHERE kind = ? ORDER BY created, id LIMIT ? OFFSET ?",
                [kind.rawValue, limit.map(Int64.init), max(offset, 0)])
            return try Self.records(rows, in: session)
        }
    }

    public func scimResources(
        kind: SCIMResourceKind, where field: SCIMIndexedField, equals value: String
    ) async throws -> [SCIMResourceRecord] {
        try await read { session in
            let condition: String
            let argument: String
            switch field {
            case .userName: (condition, argument) = ("userNameKey = ?", value.lowercased())
            case .externalId: (condition, argument) = ("externalId = ?", value)
            case .displayName: (condition, argument) = ("displayNameKey = ?", value.lowercased())
            }
            let rows = try session.query(
                "SELECT \(Self.scimColumns) FROM scim_resources WHERE kind = ? AND \(condition) ORDER BY created, id",
                [kind.rawValue, argument])
            return try Self.records(rows, in: session)
        }
    }

    public func scimResourceCount(kind: SCIMResourceKind) async throws -> Int {
        try await read { session in try session.value(Int.self, "SELECT COUNT(*) FROM scim_resources WHERE kind = ?", [kind.rawValue]) ?? 0 }
    }

    public func scimGroupGraph() async throws -> [SCIMGroupNode] {
        try await read { session in
            var nodes: [String: SCIMGroupNode] = [:]
            var order: [String] = []
            for row in try session.query("SELECT id, displayName FROM scim_resources WHERE kind = 'Group' ORDER BY created, id") {
                let id: String = try row.get(0)
                nodes[id] = SCIMGroupNode(id: id, displayName: try row.get(1, as: String?.self) ?? "", members: [])
                order.append(id)
            }
            for row in try session.query("SELECT groupId, memberId FROM scim_members ORDER BY groupId, position") {
                nodes[try row.get(0, as: String.self)]?.members.append(try row.get(1))
            }
            return order.compactMap { nodes[$0] }
        }
    }

    public func scimAncestors(of memberID: String) async throws -> [SCIMAncestor] {
        try await read { session in
            // Depth-bounded so that a cycle of nested Groups ends.
            try session.query(
                """
                WITH RECURSIVE up(groupId, depth) AS (
                    SELECT groupId, 1 FROM scim_members WHERE memberId = ?
                    UNION
                    SELECT m.groupId, up.depth + 1 FROM scim_members m JOIN up ON m.memberId = up.groupId WHERE up.depth < 32
                )
                SELECT r.id, r.displayName, MIN(up.depth)::bigint AS depth FROM up JOIN scim_resources r ON r.id = up.groupId
                WHERE r.id <> ? GROUP BY r.id ORDER BY depth, r.created, r.id
                """,
                [memberID, memberID]
            ).map { row in
                SCIMAncestor(id: try row.get(0), displayName: try row.get(1, as: String?.self) ?? "", direct: try row.get(2, as: Int.self) == 1)
            }
        }
    }

    public func scimGroups(awaitingMember values: Set<String>) async throws -> [SCIMResourceRecord] {
        guard !values.isEmpty else { return [] }
        return try await read { session in
            let rows = try session.query(
                """
                SELECT \(Self.scimColumns) FROM scim_resources WHERE id IN
                    (SELECT groupId FROM scim_pending_members WHERE value = ANY(?))
                ORDER BY created, id
                """,
                [Array(values)])
            return try Self.records(rows, in: session)
        }
    }

    @discardableResult
    public func commit(_ write: SCIMWrite, with changesets: [Changeset]) async throws -> CommitReceipt {
        let receipt = try await self.write("the SCIM change") { session in
            try Self.lockAuditHead(in: session)
            try Self.apply(write, in: session)
            var sealed: ClosedRange<Int>?
            for changeset in changesets {
                guard let seqs = try Self.apply(changeset, in: session).auditSeqs else { continue }
                sealed = sealed.map { $0.lowerBound...seqs.upperBound } ?? seqs
            }
            return CommitReceipt(auditSeqs: sealed)
        }
        if changesets.contains(where: \.addsOutboxRows) { insertions.ring() }
        return receipt
    }

    /// Applies a SCIM write inside the caller's transaction, checking expected versions first.
    static func apply(_ write: SCIMWrite, in session: PostgresSession) throws {
        for (id, expected) in write.expectedVersions {
            // Locked until the commit: a concurrent write of the same resource waits, then sees this one's version.
            let current = try session.value(String.self, "SELECT version FROM scim_resources WHERE id = ? FOR UPDATE", [id])
            guard current == expected else { throw SCIMWriteConflict(.changed(id: id)) }
        }
        if !write.deletions.isEmpty {
            try session.execute("DELETE FROM scim_resources WHERE id = ANY(?)", [write.deletions])
        }
        for record in write.upserts {
            let key = record.kind == .user ? (record.userName ?? "").lowercased() : nil
            if let key, try session.value(String.self, "SELECT id FROM scim_resources WHERE userNameKey = ? AND id <> ?", [key, record.id]) != nil {
                throw SCIMWriteConflict(.userNameTaken(record.userName ?? ""))
            }
            try session.execute(
                """
                INSERT INTO scim_resources (id, kind, userName, userNameKey, displayName, displayNameKey, externalId, version,
                    created, lastModified, body)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(id) DO UPDATE SET userName = excluded.userName, userNameKey = excluded.userNameKey,
                    displayName = excluded.displayName, displayNameKey = excluded.displayNameKey,
                    externalId = excluded.externalId, version = excluded.version,
                    lastModified = excluded.lastModified, body = excluded.body
                """,
                [
                    record.id, record.kind.rawValue, record.userName, key, record.displayName,
                    record.displayName?.lowercased(), record.externalId,
                    record.version, time(record.created), time(record.lastModified), record.body,
                ])
        }
        // Memberships after every resource exists, so a write may add a Group and its members together.
        for record in write.upserts where record.kind == .group {
            try session.execute("DELETE FROM scim_members WHERE groupId = ?", [record.id])
            if !record.members.isEmpty {
                try session.execute(
                    """
                    INSERT INTO scim_members (groupId, memberId, position)
                    SELECT ?, member, n - 1 FROM unnest(?::text[]) WITH ORDINALITY AS m(member, n) ON CONFLICT DO NOTHING
                    """,
                    [record.id, record.members])
            }
            try session.execute("DELETE FROM scim_pending_members WHERE groupId = ?", [record.id])
            if !record.pendingMembers.isEmpty {
                try session.execute(
                    """
                    INSERT INTO scim_pending_members (groupId, value, position)
                    SELECT ?, value, n - 1 FROM unnest(?::text[]) WITH ORDINALITY AS m(value, n) ON CONFLICT DO NOTHING
                    """,
                    [record.id, record.pendingMembers])
            }
        }
    }
}
