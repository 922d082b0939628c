import Foundation
import GRDB
import TetherCore

extension SQLiteStateStore {
    public func auditRecords(_ query: AuditQuery) async throws -> [AuditRecord] {
        try await read { db in
            var clauses: [String] = []
            var arguments: StatementArguments = []
            if let subject = query.subject {
                clauses.append("subject = ?")
                arguments += [subject]
            }
            if let agent = query.agent {
                clauses.append("agent = ?")
                arguments += [agent]
            }
            if let grant = query.grant {
                clauses.append("grantId = ?")
                arguments += [grant]
            }
            if let since = query.since {
                clauses.append("time >= ?")
                arguments += [Self.time(since)]
            }
            if let after = query.afterSeq {
                clauses.append("seq > ?")
                arguments += [after]
            }
            let filter = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
            let limit = query.limit.map { "LIMIT \($0)" } ?? ""
            return try String.fetchAll(db, sql: "SELECT line FROM audit \(filter) ORDER BY seq \(limit)", arguments: arguments)
                .map(Self.parseRecord)
        }
    }

    public func lastAuditSeq() async throws -> Int {
        try await read { db in try Int.fetchOne(db, sql: "SELECT MAX(seq) FROM audit") ?? 0 }
    }

    public func verifyAuditChain() async throws -> ChainVerification {
        try await read { db in AuditChain.verify(try Self.chainRows(db)) }
    }

    /// Every record's line and seq, in chain order: what verification walks.
    static func chainRows(_ db: Database) throws -> [(line: String, seq: Int)] {
        let cursor = try Row.fetchCursor(db, sql: "SELECT seq, line FROM audit ORDER BY seq")
        var rows: [(line: String, seq: Int)] = []
        while let row = try cursor.next() { rows.append((row["line"], row["seq"])) }
        return rows
    }
}
