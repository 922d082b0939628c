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
        var prev = AuditRecord.genesis
        var expectedSeq = 1
        var count = 0
        let decoder = JSONDecoder()
        for (line, rowSeq) in records {
            guard let values = try? decoder.decode([String: AuditValue].self, from: Data(line.utf8)),
                case .string(let hash)? = values["hash"]
            else { return .broken(seq: rowSeq, reason: "record is not a JSON object with a hash") }
            var body = values
            body["hash"] = nil
            let record = AuditRecord(values: body, hash: hash)
            guard record.line == line else {
                return .broken(seq: rowSeq, reason: "record is not in canonical form")
            }
            guard record.seq == expectedSeq, rowSeq == expectedSeq else {
                return .broken(seq: rowSeq, reason: "expected seq \(expectedSeq), found \(record.seq)")
            }
            guard record.prev == prev else {
                return .broken(seq: rowSeq, reason: "prev does not match the hash of record \(expectedSeq - 1)")
            }
            guard AuditRecord.hash(prev: prev, body: record.body) == hash else {
                return .broken(seq: rowSeq, reason: "hash does not match the record's content")
            }
            prev = hash
            expectedSeq += 1
            count += 1
        }
        return .intact(records: count)
    }

    /// Verifies §9 JSON Lines, numbering unreadable lines by their position.
    public static func verify(lines: [String]) -> ChainVerification {
        verify(lines.enumerated().map { (line: $0.element, seq: $0.offset + 1) })
    }
}
