import Foundation
import GRDB
import TetherCore

extension SQLiteStateStore {
    public func pendingOutbox(target: String, dueBy now: Date, limit: Int) async throws -> [OutboxEntry] {
        let due = Self.time(now)
        return try await read { db in
            let revocations = try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM outbox WHERE target = ? AND operation = 'delete'
                    AND (nextAttemptAt IS NULL OR nextAttemptAt <= ?) ORDER BY id LIMIT ?
                    """,
                arguments: [target, due, limit]
            ).map(Self.outboxEntry)
            guard revocations.count < limit else { return revocations }
            // A grant waits behind every older revocation, due or not: revocations before grants.
            let barrier = try Int64.fetchOne(
                db, sql: "SELECT MIN(id) FROM outbox WHERE target = ? AND operation = 'delete'", arguments: [target])
            let grants = try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM outbox WHERE target = ? AND operation = 'put' AND id < ?
                    AND (nextAttemptAt IS NULL OR nextAttemptAt <= ?) ORDER BY id LIMIT ?
                    """,
                arguments: [target, barrier ?? Int64.max, due, limit - revocations.count]
            ).map(Self.outboxEntry)
            return revocations + grants
        }
    }

    public func outboxBacklog(target: String) async throws -> OutboxBacklog {
        try await read { db in
            // The count from the (target, id) index; the oldest row and the latest failure are
            // one row each, from their indexes.
            let pending = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM outbox WHERE target = ?", arguments: [target]) ?? 0
            let oldest = try String.fetchOne(
                db, sql: "SELECT createdAt FROM outbox WHERE target = ? ORDER BY id LIMIT 1", arguments: [target])
            let lastError = try String.fetchOne(
                db,
                sql: """
                    SELECT lastError FROM outbox WHERE target = ? AND lastAttemptAt IS NOT NULL
                    ORDER BY lastAttemptAt DESC, id DESC LIMIT 1
                    """,
                arguments: [target])
            return OutboxBacklog(
                pending: pending, oldestCreatedAt: oldest.map { Timestamp.parse($0) ?? Date(timeIntervalSince1970: 0) },
                lastError: lastError)
        }
    }

    public func nextOutboxAttempt(target: String, after now: Date) async throws -> Date? {
        try await read { db in
            try String.fetchOne(
                db, sql: "SELECT MIN(nextAttemptAt) FROM outbox WHERE target = ? AND nextAttemptAt > ?",
                arguments: [target, Self.time(now)]
            ).flatMap(Timestamp.parse)
        }
    }

    public func dropSupersededOutbox(target: String) async throws -> [Int64] {
        try await outboxWrite { db in
            let ids = try Int64.fetchAll(
                db,
                sql: """
                    SELECT DISTINCT p.id FROM outbox d
                    JOIN outbox p ON p.target = d.target AND p.grantId = d.grantId AND p.id < d.id
                    WHERE d.target = ? AND d.operation = 'delete' AND p.operation = 'put'
                    ORDER BY p.id
                    """,
                arguments: [target])
            try Self.deleteOutboxRows(ids, in: db)
            return ids
        }
    }

    public func markDelivered(ids: [Int64]) async throws {
        guard !ids.isEmpty else { return }
        try await outboxWrite { db in
            // A delivered revocation also settles every older grant of the same grant on that
            // target: it must never be sent after the revocation, even when it was committed
            // too late to be dropped as superseded before the revocation went out.
            for id in ids {
                try db.execute(
                    sql: """
                        DELETE FROM outbox WHERE id IN (
                            SELECT p.id FROM outbox d JOIN outbox p
                                ON p.target = d.target AND p.grantId = d.grantId AND p.id < d.id AND p.operation = 'put'
                            WHERE d.id = ? AND d.operation = 'delete')
                        """,
                    arguments: [id])
            }
            try Self.deleteOutboxRows(ids, in: db)
        }
    }

    public func markFailed(id: Int64, error: String, at time: Date, nextAttemptAt: Date) async throws {
        let now = Self.time(time)
        try await outboxWrite { db in
            try db.execute(
                sql: "UPDATE outbox SET attempts = attempts + 1, lastError = ?, nextAttemptAt = ?, lastAttemptAt = ? WHERE id = ?",
                arguments: [error, Self.time(nextAttemptAt), now, id])
        }
    }

    public func outboxInsertions() -> AsyncStream<Void> {
        let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let observer = OutboxInsertionObserver(continuation: continuation)
        pool.add(transactionObserver: observer, extent: .observerLifetime)
        // GRDB holds the observer weakly: this closure keeps it alive as long as the stream,
        // and releasing it ends the observation. Nothing here may block: termination runs
        // inside task cancellation, and a synchronous `remove` would wait on the writer queue.
        continuation.onTermination = { _ in withExtendedLifetime(observer) {} }
        return stream
    }

    public func targetBaseline(target: String) async throws -> TargetBaseline {
        try await read { db in
            var grants: [String: Grant] = [:]
            var policies: [String: String] = [:]
            let rows = try Row.fetchCursor(db, sql: "SELECT id, subject, agent, scope, resource, policy FROM grants")
            while let row = try rows.next() {
                let id: String = row["id"]
                grants[id] = Grant(subject: row["subject"], agent: row["agent"], scope: row["scope"], resource: row["resource"])
                policies[id] = row["policy"]
            }
            let waiting = try String.fetchSet(db, sql: "SELECT DISTINCT grantId FROM outbox WHERE target = ?", arguments: [target])
            let seq = try Int.fetchOne(db, sql: "SELECT MAX(seq) FROM audit") ?? 0
            return TargetBaseline(grants: grants, policies: policies, waiting: waiting, auditSeq: seq)
        }
    }

    public func commitTargetRepairs(
        _ repairs: [TargetRepair], audit: [AuditEntry], resolution: (id: String, status: PlanStatus, by: String)?,
        supersedes: Supersession?, unchangedAfter auditSeq: Int, time: Date
    ) async throws -> [TargetRepair] {
        guard !repairs.isEmpty || !audit.isEmpty || resolution != nil || supersedes != nil else { return [] }
        return try await outboxWrite { db in
            var applied: [TargetRepair] = []
            for repair in repairs where try Self.stillHolds(repair, unchangedAfter: auditSeq, in: db) {
                applied.append(repair)
            }
            var changeset = Changeset(time: time)
            changeset.audit = audit + applied.map(\.audit)
            changeset.planResolution = resolution
            changeset.supersedes = supersedes
            _ = try Self.apply(changeset, in: db)
            let now = Self.time(time)
            let enqueue = try db.cachedStatement(
                sql: "INSERT INTO outbox (target, grantId, operation, payload, createdAt) VALUES (?, ?, ?, ?, ?)")
            for repair in applied {
                let operation: String
                switch repair.kind {
                case .resend: operation = "put"
                case .revokeOrphan: operation = "delete"
                case .reportOrphan: continue
                }
                try enqueue.execute(arguments: [repair.target, repair.grant.id, operation, try Self.encode(repair.grant), now])
            }
            return applied
        }
    }

    /// Whether a drift repair decided on an earlier read is still true inside this transaction.
    private static func stillHolds(_ repair: TargetRepair, unchangedAfter auditSeq: Int, in db: Database) throws -> Bool {
        let id = repair.grant.id
        let changed = try Bool.fetchOne(
            db, sql: "SELECT EXISTS (SELECT 1 FROM audit WHERE grantId = ? AND seq > ?)", arguments: [id, auditSeq]) ?? false
        let waiting = try Bool.fetchOne(
            db, sql: "SELECT EXISTS (SELECT 1 FROM outbox WHERE target = ? AND grantId = ?)",
            arguments: [repair.target, id]) ?? false
        let stored = try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM grants WHERE id = ?)", arguments: [id]) ?? false
        return try repairHolds(repair.kind, changed: changed, waiting: waiting, stored: stored) { try alreadyReported(repair, in: db) }
    }

    /// Whether the latest audit record about this grant on this target (or on every target) is
    /// the report of the same orphan: then nothing changed since, and it is not audited again.
    private static func alreadyReported(_ repair: TargetRepair, in db: Database) throws -> Bool {
        let lines = try String.fetchCursor(
            db, sql: "SELECT line FROM audit WHERE grantId = ? ORDER BY seq DESC", arguments: [repair.grant.id])
        while let line = try lines.next() {
            let record = try parseRecord(line)
            if let target = record["target"], target != repair.target { continue }
            return record.action == repair.audit.action.rawValue && record["target"] == repair.target
        }
        return false
    }

    /// Runs a write transaction, mapping failures to ``StoreError``.
    func outboxWrite<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        defer { checkpointer.committed() }
        do {
            return try await pool.write(body)
        } catch let error as StoreError {
            throw error
        } catch let cancelled as CancellationError {
            // A cancelled task's read or write did not happen; that is not a store failure.
            throw cancelled
        } catch {
            throw StoreError(.write, "writing the outbox in the store at \(path) failed; nothing was changed", underlying: error)
        }
    }

    private static func deleteOutboxRows(_ ids: [Int64], in db: Database) throws {
        let statement = try db.cachedStatement(sql: "DELETE FROM outbox WHERE id = ?")
        for id in ids { try statement.execute(arguments: [id]) }
    }

    static func outboxEntry(_ row: Row) throws -> OutboxEntry {
        let createdAt: String = row["createdAt"]
        let nextAttemptAt: String? = row["nextAttemptAt"]
        return OutboxEntry(
            id: row["id"], target: row["target"], grantID: row["grantId"],
            operation: OutboxEntry.Operation(rawValue: row["operation"]) ?? .put,
            grant: try decode(Grant.self, row["payload"], what: "outbox payload"),
            createdAt: Timestamp.parse(createdAt) ?? Date(timeIntervalSince1970: 0),
            attempts: row["attempts"],
            nextAttemptAt: nextAttemptAt.flatMap(Timestamp.parse),
            lastError: row["lastError"])
    }
}

/// Rings after each committed transaction that inserted outbox rows. GRDB calls it on the
/// writer's queue, one transaction at a time, which is what guards `inserted`.
private final class OutboxInsertionObserver: TransactionObserver, @unchecked Sendable {
    private let continuation: AsyncStream<Void>.Continuation
    private var inserted = false

    init(continuation: AsyncStream<Void>.Continuation) { self.continuation = continuation }

    func observes(eventsOfKind eventKind: DatabaseEventKind) -> Bool {
        if case .insert(let table) = eventKind { return table == "outbox" }
        return false
    }

    func databaseDidChange(with event: DatabaseEvent) { inserted = true }

    func databaseDidCommit(_ db: Database) {
        if inserted { continuation.yield() }
        inserted = false
    }

    func databaseDidRollback(_ db: Database) { inserted = false }
}
