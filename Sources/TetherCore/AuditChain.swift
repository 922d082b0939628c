import Foundation

/// The outcome of recomputing a hash chain.
public enum ChainVerification: Sendable, Equatable {
    case intact(records: Int)
    /// The first record that does not verify, by sequence number (or line when unreadable).
    case broken(seq: Int, reason: String)
}

/// Recomputes the audit hash chain (SPEC §9).
public enum AuditChain {
    /// Verifies records in order: each must be canonical, hash to its `hash`, and name the
    /// previous record's hash as its `prev`, with consecutive `seq` from 1.
    public static func verify(_ records: some Sequence<(line: String, seq: Int)>) -> ChainVerification {
        verify(records, keepingHashesOf: []).verification
    }

    /// ``verify(_:)``, also returning the hash of each record in `seqs` the walk verified.
    static func verify(
        _ records: some Sequence<(line: String, seq: Int)>, keepingHashesOf seqs: Set<Int>
    ) -> (verification: ChainVerification, hashes: [Int: String]) {
        var hashes: [Int: String] = [:]
        func broken(_ seq: Int, _ reason: String) -> (ChainVerification, [Int: String]) {
            (.broken(seq: seq, reason: reason), hashes)
        }
        var prev = AuditRecord.genesis
        var expectedSeq = 1
        var count = 0
        let decoder = JSONDecoder()
        for (line, rowSeq) in records {
            guard let values = try? decoder.decode([String: AuditValue].self, from: Data(line.utf8)),
                case .string(let hash)? = values["hash"]
            else { return broken(rowSeq, "record is not a JSON object with a hash") }
            var body = values
            body["hash"] = nil
            let record = AuditRecord(values: body, hash: hash)
            guard record.line == line else {
                return broken(rowSeq, "record is not in canonical form")
            }
            guard record.seq == expectedSeq, rowSeq == expectedSeq else {
                return broken(rowSeq, "expected seq \(expectedSeq), found \(record.seq)")
            }
            guard record.prev == prev else {
                return broken(rowSeq, "prev does not match the hash of record \(expectedSeq - 1)")
            }
            guard AuditRecord.hash(prev: prev, body: record.body) == hash else {
                return broken(rowSeq, "hash does not match the record's content")
            }
            if seqs.contains(rowSeq) { hashes[rowSeq] = hash }
            prev = hash
            expectedSeq += 1
            count += 1
        }
        return (.intact(records: count), hashes)
    }

    /// Verifies the chain as ``verify(_:)`` does, and the chain against `checkpoints` kept
    /// elsewhere (docs/audit.md): each must be signed by `key`, and the chain must have each
    /// checkpointed seq with the checkpointed hash. Broken at the first seq where a checkpoint
    /// is refused, names a seq the chain no longer has (records cut off), or disagrees with
    /// the chain (the chain rewritten); else where the chain itself breaks.
    public static func verify(
        _ records: some Sequence<(line: String, seq: Int)>, against checkpoints: [AuditCheckpoint], trusting key: AuditPublicKey
    ) -> ChainVerification {
        let (chain, hashes) = verify(records, keepingHashesOf: Set(checkpoints.map(\.seq)))
        for checkpoint in checkpoints.sorted(by: { $0.seq < $1.seq }) {
            let seq = checkpoint.seq
            guard checkpoint.key == key.id else {
                return .broken(
                    seq: seq, reason: "the checkpoint is signed by key \(checkpoint.key), not the trusted key \(key.id); refused")
            }
            guard key.verifies(signature: checkpoint.signature, of: checkpoint.signedMessage) else {
                return .broken(
                    seq: seq, reason: "the checkpoint's signature does not verify with key \(key.id): it was altered; refused")
            }
            switch chain {
            case .broken(let brokenSeq, _) where seq >= brokenSeq:
                return chain
            case .intact(let count) where seq > count:
                return .broken(
                    seq: seq,
                    reason: "the checkpoint of \(checkpoint.time) covers seq \(seq), but the chain ends at seq \(count): "
                        + "records \(count + 1)…\(seq) were cut off")
            default:
                break
            }
            guard let hash = hashes[seq], hash == checkpoint.hash else {
                return .broken(
                    seq: seq,
                    reason: "the chain's hash at seq \(seq) is not the one signed at \(checkpoint.time): "
                        + "the chain was rewritten up to this record")
            }
        }
        return chain
    }

    /// Verifies §9 JSON Lines, numbering unreadable lines by their position.
    public static func verify(lines: [String]) -> ChainVerification {
        verify(lines.enumerated().map { (line: $0.element, seq: $0.offset + 1) })
    }
}
