import Foundation
import TetherCore

extension PostgresStateStore: AuditCheckpointStore {
    public func checkpointAuditHead(_ sign: @escaping @Sendable (_ seq: Int, _ hash: String) -> AuditCheckpoint) async throws
        -> AuditCheckpoint?
    {
        try await write("an audit checkpoint") { session in
            // The head cannot move while it is signed.
            try Self.lockAuditHead(in: session)
            guard let head = try session.query("SELECT seq, line FROM audit ORDER BY seq DESC LIMIT 1").first else { return nil }
            let seq: Int = try head.get(0)
            let covered = try session.value(Int.self, "SELECT MAX(seq) FROM audit_checkpoints") ?? 0
            guard seq > covered else { return nil }
            // The hash in the record's line, which the chain is verified by, not the column beside it.
            let hash = try Self.parseRecord(try head.get(1)).hash
            let checkpoint = sign(seq, hash)
            try session.execute(
                "INSERT INTO audit_checkpoints (seq, hash, time, signature, key) VALUES (?, ?, ?, ?, ?)",
                [checkpoint.seq, checkpoint.hash, checkpoint.time, checkpoint.signature, checkpoint.key])
            return checkpoint
        }
    }

    public func auditCheckpoints(after seq: Int?, limit: Int?) async throws -> [AuditCheckpoint] {
        try await read { session in
            try session.query(
                "SELECT seq, hash, time, signature, key FROM audit_checkpoints WHERE seq > ? ORDER BY seq LIMIT ?",
                [seq ?? 0, limit.map(Int64.init)]
            ).map { row in
                AuditCheckpoint(seq: try row.get(0), hash: try row.get(1), time: try row.get(2), signature: try row.get(3), key: try row.get(4))
            }
        }
    }

    public func checkpointDelivered(target: String) async throws -> Int {
        try await read { session in
            try session.value(Int.self, "SELECT seq FROM audit_checkpoint_deliveries WHERE target = ?", [target]) ?? 0
        }
    }

    public func markCheckpointDelivered(target: String, seq: Int) async throws {
        try await write("a checkpoint delivery") { session in
            try session.execute(
                """
                INSERT INTO audit_checkpoint_deliveries (target, seq) VALUES (?, ?)
                ON CONFLICT (target) DO UPDATE SET seq = greatest(audit_checkpoint_deliveries.seq, excluded.seq)
                """,
                [target, seq])
        }
    }

    /// Recomputes the whole chain and checks it against `checkpoints` kept elsewhere, which
    /// must be signed by `key` (``AuditChain/verify(_:against:trusting:)``).
    public func verifyAuditChain(against checkpoints: [AuditCheckpoint], trusting key: AuditPublicKey) async throws
        -> ChainVerification
    {
        try await read { session in AuditChain.verify(try Self.chainRows(session), against: checkpoints, trusting: key) }
    }
}
