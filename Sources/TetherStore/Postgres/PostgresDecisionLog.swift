import Foundation
import NIOCore
import PostgresNIO
import TetherCore

/// The decision log in the PostgreSQL store (SPEC §16): the `decisions` table, which every
/// node's writer fills with `COPY … FROM STDIN` on a connection of its own, outside any grant's
/// transaction and unfenced (a follower records the checks it answers too).
///
/// A row is the decision as the check answered it, strings inline: PostgreSQL compresses
/// nothing this small, but a row is one `COPY` line, and the table is read by its indexes on
/// time, subject and agent (each with the time).
public final class PostgresDecisionLog: DecisionLog {
    let store: PostgresStateStore

    /// The log in `store`'s database; the table is created by the store's migrations.
    public init(store: PostgresStateStore) {
        self.store = store
    }

    public var location: String { "the decisions table of \(store.location)" }

    /// The table's columns in a `COPY` line's order, as PostgreSQL names them.
    static let columns = ["moment", "id", "subject", "agent", "scope", "resource", "allowed", "grantid", "policy", "policyset", "revision", "caller"]

    public func write(_ decisions: [DecisionRecord], behind: Bool) async throws {
        guard !decisions.isEmpty else { return }
        var buffer = ByteBufferAllocator().buffer(capacity: decisions.count * 192)
        for decision in decisions { Self.append(decision, to: &buffer) }
        let (data, logger) = (buffer, store.logger)
        do {
            try await store.connection { connection in
                try await connection.copyFrom(table: "decisions", columns: Self.columns, logger: logger) { writer in
                    try await writer.write(data)
                }
            }
        } catch let cancelled as CancellationError {
            throw cancelled
        } catch {
            throw StoreError(
                .write, "\(decisions.count) decisions were not written to \(location)", underlying: PostgresStateStore.plain(error))
        }
    }

    /// `decision` as one line of `COPY`'s text format: tab-separated, `\N` for NULL.
    static func append(_ decision: DecisionRecord, to buffer: inout ByteBuffer) {
        buffer.writeString(String(DecisionID.milliseconds(decision.time)))
        for text in [decision.id, decision.subject, decision.agent, decision.scope, decision.resource] {
            buffer.writeInteger(UInt8(ascii: "\t"))
            appendText(text, to: &buffer)
        }
        buffer.writeString(decision.allowed ? "\tt\t" : "\tf\t")
        appendOptional(decision.grant, to: &buffer)
        buffer.writeInteger(UInt8(ascii: "\t"))
        appendOptional(decision.policy, to: &buffer)
        buffer.writeInteger(UInt8(ascii: "\t"))
        appendText(decision.policySet, to: &buffer)
        buffer.writeString("\t\(decision.revision)\t")
        appendText(decision.caller, to: &buffer)
        buffer.writeInteger(UInt8(ascii: "\n"))
    }

    private static func appendOptional(_ text: String?, to buffer: inout ByteBuffer) {
        if let text { appendText(text, to: &buffer) } else { buffer.writeString("\\N") }
    }

    /// `text` with the characters `COPY`'s text format gives a meaning escaped: the backslash,
    /// the tab and the line ends.
    static func appendText(_ text: String, to buffer: inout ByteBuffer) {
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\\"): buffer.writeString("\\\\")
            case UInt8(ascii: "\t"): buffer.writeString("\\t")
            case UInt8(ascii: "\n"): buffer.writeString("\\n")
            case UInt8(ascii: "\r"): buffer.writeString("\\r")
            default: buffer.writeInteger(byte)
            }
        }
    }

    public func deleteDecisions(before cutoff: Date, limit: Int) async throws -> Int {
        let moment = DecisionID.milliseconds(cutoff)
        do {
            return try await store.session { session in
                try session.execute(
                    "DELETE FROM decisions WHERE ctid = ANY(ARRAY(SELECT ctid FROM decisions WHERE moment < ? ORDER BY moment LIMIT ?))",
                    [moment, limit])
            }
        } catch {
            throw StoreError(.write, "old decisions could not be deleted from \(location)", underlying: PostgresStateStore.plain(error))
        }
    }

    static let selection = """
        SELECT moment, id, subject, agent, scope, resource, allowed, grantID, policy, policySet, revision, caller FROM decisions
        """

    public func decisions(_ query: DecisionQuery) async throws -> [DecisionRecord] {
        var filter = PostgresFilter()
        filter.add("subject = ?", query.subject)
        filter.add("agent = ?", query.agent)
        filter.add("moment >= ?", query.since.map(DecisionID.milliseconds))
        filter.add("moment < ?", query.until.map(DecisionID.milliseconds))
        if query.deniedOnly { filter.add("NOT allowed") }
        let limit = query.limit.map { " LIMIT \($0)" } ?? ""
        let (sql, arguments) = (Self.selection + filter.sql + " ORDER BY moment, id" + limit, filter.arguments)
        return try await store.read { session in try session.query(sql, arguments).map(Self.record) }
    }

    public func decision(id: String) async throws -> DecisionRecord? {
        guard let (milliseconds, _) = DecisionID.parse(id) else { return nil }
        return try await store.read { session in
            try session.query(Self.selection + " WHERE moment = ? AND id = ?", [milliseconds, id]).first.map(Self.record)
        }
    }

    public func count() async throws -> Int {
        try await store.read { session in try session.value(Int.self, "SELECT count(*) FROM decisions") ?? 0 }
    }

    public func bytesUsed() async throws -> Int {
        try await store.read { session in try session.value(Int.self, "SELECT pg_total_relation_size('decisions')") ?? 0 }
    }

    static func record(_ row: PostgresRandomAccessRow) throws -> DecisionRecord {
        DecisionRecord(
            id: try row.get(1), time: Date(timeIntervalSince1970: Double(try row.get(0, as: Int64.self)) / 1000),
            subject: try row.get(2), agent: try row.get(3), scope: try row.get(4), resource: try row.get(5),
            allowed: try row.get(6), grant: try row.get(7, as: String?.self), policy: try row.get(8, as: String?.self),
            policySet: try row.get(9), revision: Int(try row.get(10, as: Int64.self)), caller: try row.get(11))
    }
}
