import Foundation
import PostgresNIO
import TetherCore

extension PostgresStateStore {
    static let outboxColumns = "id, target, grantId, operation, payload, createdAt, attempts, nextAttemptAt, lastError"

    public func outbox(target: String?) async throws -> [OutboxEntry] {
        try await read { session in
            let filter = target == nil ? "" : "WHERE target = ?"
            return try session.query("SELECT \(Self.outboxColumns) FROM outbox \(filter) ORDER BY id", target.map { [$0] } ?? [])
                .map(Self.outboxEntry)
        }
    }

    public func pendingOutbox(target: String, dueBy now: Date, limit: Int) async throws -> [OutboxEntry] {
        let due = Self.time(now)
        return try await read { session in
            let revocations = try session.query(
                """
                SELECT \(Self.outboxColumns) FROM outbox WHERE target = ? AND operation = 'delete'
                AND (nextAttemptAt IS NULL OR nextAttemptAt <= ?) ORDER BY id LIMIT ?
                """,
                [target, due, limit]
            ).map(Self.outboxEntry)
            guard revocations.count < limit else { return revocations }
            // A grant waits behind every older revocation, due or not: revocations before grants.
            let barrier = try session.value(Int64.self, "SELECT MIN(id) FROM outbox WHERE target = ? AND operation = 'delete'", [target])
            let grants = try session.query(
                """
                SELECT \(Self.outboxColumns) FROM outbox WHERE target = ? AND operation = 'put' AND id < ?
                AND (nextAttemptAt IS NULL OR nextAttemptAt <= ?) ORDER BY id LIMIT ?
                """,
                [target, barrier ?? Int64.max, due, limit - revocations.count]
            ).map(Self.outboxEntry)
            return revocations + grants
        }
    }

    public func outboxBacklog(target: String) async throws -> OutboxBacklog {
        try await read { session in
            let pending = try session.value(Int.self, "SELECT COUNT(*) FROM outbox WHERE target = ?", [target]) ?? 0
            let oldest = try session.value(String.self, "SELECT createdAt FROM outbox WHERE target = ? ORDER BY id LIMIT 1", [target])
            let lastError = try session.value(
                String.self,
                """
                SELECT lastError FROM outbox WHERE target = ? AND lastAttemptAt IS NOT NULL
                ORDER BY lastAttemptAt DESC, id DESC LIMIT 1
                """,
                [target])
            return OutboxBacklog(
                pending: pending, oldestCreatedAt: oldest.map { Timestamp.parse($0) ?? Date(timeIntervalSince1970: 0) },
                lastError: lastError)
        }
    }

    public func nextOutboxAttempt(target: String, after now: Date) async throws -> Date? {
        try await read { session in
            try session.value(
                String.self, "SELECT MIN(nextAttemptAt) FROM outbox WHERE target = ? AND nextAttemptAt > ?", [target, Self.time(now)]
            ).flatMap(Timestamp.parse)
        }
    }

    public func dropSupersededOutbox(target: String) async throws -> [Int64] {
        try await write("dropping superseded outbox rows") { session in
            try session.column(
                Int64.self,
                """
                DELETE FROM outbox WHERE id IN (
                    SELECT p.id FROM outbox d
                    JOIN outbox p ON p.target = d.target AND p.grantId = d.grantId AND p.id < d.id
                    WHERE d.target = ? AND d.operation = 'delete' AND p.operation = 'put')
                RETURNING id
                """,
                [target]
            ).sorted()
        }
    }

    public func markDelivered(ids: [Int64]) async throws {
        guard !ids.isEmpty else { return }
        try await write("recording a delivery") { session in
            // A delivered revocation also settles every older grant of the same grant on that
            // target: it must never be sent after the revocation, even when it was committed
            // too late to be dropped as superseded before the revocation went out.
            let delivered = PostgresArray(ids.map { Optional($0) })
            try session.execute(
                """
                DELETE FROM outbox WHERE id IN (
                    SELECT p.id FROM outbox d JOIN outbox p
                        ON p.target = d.target AND p.grantId = d.grantId AND p.id < d.id AND p.operation = 'put'
                    WHERE d.id = ANY(?) AND d.operation = 'delete')
                """,
                [delivered])
            try session.execute("DELETE FROM outbox WHERE id = ANY(?)", [delivered])
        }
    }

    public func markFailed(id: Int64, error: String, at time: Date, nextAttemptAt: Date) async throws {
        let now = Self.time(time)
        try await write("recording a failed delivery") { session in
            try session.execute(
                "UPDATE outbox SET attempts = attempts + 1, lastError = ?, nextAttemptAt = ?, lastAttemptAt = ? WHERE id = ?",
                [error, Self.time(nextAttemptAt), now, id])
        }
    }

    /// Rings for commits made by this process. A leader delivers what it committed itself; a
    /// change committed by another node is found by the deliverers' periodic look.
    public func outboxInsertions() -> AsyncStream<Void> { insertions.stream() }

    public func commitTargetRepairs(
        _ repairs: [TargetRepair], audit: [AuditEntry], resolution: (id: String, status: PlanStatus, by: String)?,
        supersedes: Supersession?, unchangedAfter auditSeq: Int, time: Date
    ) async throws -> [TargetRepair] {
        guard !repairs.isEmpty || !audit.isEmpty || resolution != nil || supersedes != nil else { return [] }
        let resolved = resolution.map { PlanResolution(id: $0.id, status: $0.status, by: $0.by) }
        let applied = try await write("the drift repair") { session in
            // The head first: no other commit changes a grant between the checks and the writes.
            try Self.lockAuditHead(in: session)
            var applied: [TargetRepair] = []
            for repair in repairs where try Self.stillHolds(repair, unchangedAfter: auditSeq, in: session) {
                applied.append(repair)
            }
            var changeset = Changeset(time: time)
            changeset.audit = audit + applied.map(\.audit)
            changeset.planResolution = resolved.map { ($0.id, $0.status, $0.by) }
            changeset.supersedes = supersedes
            _ = try Self.apply(changeset, in: session)
            var rows: [(target: String, grant: Grant, operation: String)] = []
            for repair in applied {
                switch repair.kind {
                case .resend: rows.append((repair.target, repair.grant, "put"))
                case .revokeOrphan: rows.append((repair.target, repair.grant, "delete"))
                case .reportOrphan: continue
                }
            }
            try Self.enqueue(rows, now: Self.time(time), in: session)
            return applied
        }
        if applied.contains(where: { $0.kind != .reportOrphan }) { insertions.ring() }
        return applied
    }

    /// Whether a drift repair decided on an earlier read is still true inside this transaction.
    private static func stillHolds(_ repair: TargetRepair, unchangedAfter auditSeq: Int, in session: PostgresSession) throws -> Bool {
        let id = repair.grant.id
        let row = try session.query(
            """
            SELECT EXISTS (SELECT 1 FROM audit WHERE grantId = ? AND seq > ?),
                EXISTS (SELECT 1 FROM outbox WHERE target = ? AND grantId = ?),
                EXISTS (SELECT 1 FROM grants WHERE id = ?)
            """,
            [id, auditSeq, repair.target, id, id])[0]
        return try repairHolds(
            repair.kind, changed: try row.get(0, as: Bool.self), waiting: try row.get(1, as: Bool.self),
            stored: try row.get(2, as: Bool.self), reported: { try alreadyReported(repair, in: session) })
    }

    /// Whether the latest audit record about this grant on this target (or on every target) is
    /// the report of the same orphan: then nothing changed since, and it is not audited again.
    private static func alreadyReported(_ repair: TargetRepair, in session: PostgresSession) throws -> Bool {
        for line in try session.column(String.self, "SELECT line FROM audit WHERE grantId = ? ORDER BY seq DESC", [repair.grant.id]) {
            let record = try parseRecord(line)
            if let target = record["target"], target != repair.target { continue }
            return record.action == repair.audit.action.rawValue && record["target"] == repair.target
        }
        return false
    }

    static func outboxEntry(_ row: PostgresRandomAccessRow) throws -> OutboxEntry {
        let createdAt: String = try row.get(5)
        let nextAttemptAt = try row.get(7, as: String?.self)
        return OutboxEntry(
            id: try row.get(0), target: try row.get(1), grantID: try row.get(2),
            operation: OutboxEntry.Operation(rawValue: try row.get(3)) ?? .put,
            grant: try decode(Grant.self, try row.get(4), what: "outbox payload"),
            createdAt: Timestamp.parse(createdAt) ?? Date(timeIntervalSince1970: 0),
            attempts: try row.get(6),
            nextAttemptAt: nextAttemptAt.flatMap(Timestamp.parse),
            lastError: try row.get(8, as: String?.self))
    }
}

/// A held plan's resolution, carried into a write transaction.
private struct PlanResolution: Sendable {
    var id: String
    var status: PlanStatus
    var by: String
}
