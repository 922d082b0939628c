import Foundation
import GRDB
import TetherCore

/// Signed audit checkpoints (docs/audit.md): made from the chain head, kept beside the chain,
/// and sent to a checkpoint target, whose delivery is recorded so a restart resumes it.
public protocol AuditCheckpointStore: Sendable {
    /// Signs the chain head with `sign` and stores the checkpoint, in one transaction, if the
    /// chain has records after the latest checkpoint; returns the checkpoint made, else nil.
    func checkpointAuditHead(_ sign: @escaping @Sendable (_ seq: Int, _ hash: String) -> AuditCheckpoint) async throws
        -> AuditCheckpoint?
    /// The stored checkpoints after `seq` (every one when nil), oldest first, at most `limit`.
    func auditCheckpoints(after seq: Int?, limit: Int?) async throws -> [AuditCheckpoint]
    /// The seq of the latest checkpoint `target` acknowledged; 0 when none.
    func checkpointDelivered(target: String) async throws -> Int
    /// Records that `target` acknowledged every checkpoint up to `seq`.
    func markCheckpointDelivered(target: String, seq: Int) async throws
    /// Recomputes the whole chain and checks it against `checkpoints` kept elsewhere, which
    /// must be signed by `key` (``AuditChain/verify(_:against:trusting:)``).
    func verifyAuditChain(against checkpoints: [AuditCheckpoint], trusting key: AuditPublicKey) async throws -> ChainVerification
}

extension SQLiteStateStore: AuditCheckpointStore {
    public func checkpointAuditHead(_ sign: @escaping @Sendable (_ seq: Int, _ hash: String) -> AuditCheckpoint) async throws
        -> AuditCheckpoint?
    {
        try await checkpointWrite { db in
            guard let head = try Row.fetchOne(db, sql: "SELECT seq, line FROM audit ORDER BY seq DESC LIMIT 1") else {
                return nil
            }
            let seq: Int = head["seq"]
            let covered = try Int.fetchOne(db, sql: "SELECT MAX(seq) FROM audit_checkpoints") ?? 0
            guard seq > covered else { return nil }
            // The hash in the record's line, which the chain is verified by, not the column beside it.
            let hash = try Self.parseRecord(head["line"]).hash
            let checkpoint = sign(seq, hash)
            try db.execute(
                sql: "INSERT INTO audit_checkpoints (seq, hash, time, signature, key) VALUES (?, ?, ?, ?, ?)",
                arguments: [checkpoint.seq, checkpoint.hash, checkpoint.time, checkpoint.signature, checkpoint.key])
            return checkpoint
        }
    }

    public func auditCheckpoints(after seq: Int?, limit: Int?) async throws -> [AuditCheckpoint] {
        try await read { db in
            try Row.fetchAll(
                db, sql: "SELECT seq, hash, time, signature, key FROM audit_checkpoints WHERE seq > ? ORDER BY seq LIMIT ?",
                arguments: [seq ?? 0, limit ?? -1]
            ).map { row in
                AuditCheckpoint(seq: row["seq"], hash: row["hash"], time: row["time"], signature: row["signature"], key: row["key"])
            }
        }
    }

    public func checkpointDelivered(target: String) async throws -> Int {
        try await read { db in
            try Int.fetchOne(db, sql: "SELECT seq FROM audit_checkpoint_deliveries WHERE target = ?", arguments: [target]) ?? 0
        }
    }

    public func markCheckpointDelivered(target: String, seq: Int) async throws {
        try await checkpointWrite { db in
            try db.execute(
                sql: """
                    INSERT INTO audit_checkpoint_deliveries (target, seq) VALUES (?, ?)
                    ON CONFLICT (target) DO UPDATE SET seq = MAX(seq, excluded.seq)
                    """,
                arguments: [target, seq])
        }
    }

    /// Recomputes the whole chain and checks it against `checkpoints` kept elsewhere, which
    /// must be signed by `key` (``AuditChain/verify(_:against:trusting:)``).
    public func verifyAuditChain(against checkpoints: [AuditCheckpoint], trusting key: AuditPublicKey) async throws
        -> ChainVerification
    {
        try await read { db in AuditChain.verify(try Self.chainRows(db), against: checkpoints, trusting: key) }
    }

    /// Runs a write transaction, mapping failures to ``StoreError``.
    private func checkpointWrite<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        defer { checkpointer.committed() }
        do {
            return try await pool.write(body)
        } catch let cancelled as CancellationError {
            throw cancelled
        } catch {
            throw StoreError(.write, "writing an audit checkpoint to the store at \(path) failed; nothing was changed", underlying: error)
        }
    }

    /// The `v9` tables: checkpoints, append-only like the chain, and their delivery.
    static func createCheckpointTables(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE audit_checkpoints (
                seq INTEGER PRIMARY KEY NOT NULL,
                hash TEXT NOT NULL,
                time TEXT NOT NULL,
                signature TEXT NOT NULL,
                key TEXT NOT NULL
            );
            CREATE TRIGGER audit_checkpoints_are_append_only_update BEFORE UPDATE ON audit_checkpoints
                BEGIN SELECT RAISE(ABORT, 'audit checkpoints are never updated'); END;
            CREATE TRIGGER audit_checkpoints_are_append_only_delete BEFORE DELETE ON audit_checkpoints
                BEGIN SELECT RAISE(ABORT, 'audit checkpoints are never deleted'); END;
            CREATE TABLE audit_checkpoint_deliveries (
                target TEXT PRIMARY KEY NOT NULL,
                seq INTEGER NOT NULL
            );
            """)
    }
}
