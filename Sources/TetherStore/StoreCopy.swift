import Foundation
import GRDB
import PostgresNIO
import TetherCore

/// `tether store copy`: moves a stopped deployment's store between SQLite and PostgreSQL
/// (SPEC §14), table by table, rows unchanged.
///
/// Both backends keep the same tables, columns and stored texts, so a row is copied as it is:
/// the audit records keep their seqs, hashes and lines, and the chain verifies on the copy.
/// The source is read in one snapshot and the target written in one transaction: a copy that
/// fails leaves the target as it was. The target must be a new, empty store.
public enum StoreCopy {
    /// One end of a copy.
    public enum Endpoint: Sendable, CustomStringConvertible {
        case sqlite(path: String)
        case postgres(PostgresSettings)

        public var description: String {
            switch self {
            case .sqlite(let path): "sqlite:\(path)"
            case .postgres(let settings): settings.url
            }
        }
    }

    /// How far a copy is: the table being copied, rows copied in all and of how many.
    public struct Progress: Sendable, Hashable {
        public var table: String
        public var copied: Int
        public var total: Int
    }

    /// What was copied, and the chain as the copy verified it.
    public struct Summary: Sendable, Hashable {
        /// Rows copied, by table.
        public var rows: [String: Int]
        public var auditRecords: Int
        /// The hash of the newest audit record, the same on both ends; nil for an empty log.
        public var auditHead: String?
    }

    /// A copy that could not be made; nothing was written to the target.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    enum Kind { case text, integer, bytes }

    struct Table {
        var name: String
        var columns: [(name: String, kind: Kind)]
        /// The order rows are read and written in: what carries SQLite's rowid order across.
        var sqliteOrder: String
        var postgresOrder: String

        init(_ name: String, _ columns: [(String, Kind)], order: String, postgresOrder: String? = nil) {
            self.name = name
            self.columns = columns
            sqliteOrder = order
            self.postgresOrder = postgresOrder ?? order
        }

        var columnList: String { columns.map(\.name).joined(separator: ", ") }
    }

    /// Every table of the store, parents before the rows that refer to them. The decision log
    /// (PostgreSQL's `decisions`, SQLite's file of its own) is not the store's, and not copied.
    static let tables: [Table] = [
        Table(
            "identities",
            [("id", .text), ("userName", .text), ("emailLower", .text), ("employeeNumber", .text), ("status", .text), ("data", .text)],
            order: "id"),
        Table("identity_links", [("source", .text), ("externalId", .text), ("identity", .text)], order: "source, externalId"),
        Table("directory_lags", [("identity", .text), ("data", .text)], order: "identity"),
        Table(
            "grants",
            [
                ("id", .text), ("subject", .text), ("agent", .text), ("scope", .text), ("resource", .text), ("policy", .text),
                ("lineage", .text), ("grantedAt", .text), ("auditSeq", .integer),
            ], order: "id"),
        Table("agent_states", [("agent", .text), ("data", .text)], order: "agent"),
        Table(
            "events",
            [
                ("id", .text), ("source", .text), ("kind", .text), ("identity", .text), ("status", .text), ("receivedAt", .text),
                ("payload", .text),
            ], order: "id"),
        Table("scheduled_leavers", [("event", .text), ("effectiveAt", .text), ("done", .integer)], order: "event"),
        Table(
            "plans",
            [
                ("id", .text), ("scope", .text), ("status", .text), ("reason", .text), ("createdAt", .text), ("resolvedBy", .text),
                ("body", .text), ("pendingIdentities", .text),
            ], order: "id"),
        Table(
            "audit",
            [
                ("seq", .integer), ("hash", .text), ("prev", .text), ("action", .text), ("actor", .text), ("subject", .text),
                ("agent", .text), ("grantId", .text), ("time", .text), ("line", .text),
            ], order: "seq"),
        Table(
            "outbox",
            [
                ("id", .integer), ("target", .text), ("grantId", .text), ("operation", .text), ("payload", .text), ("createdAt", .text),
                ("attempts", .integer), ("nextAttemptAt", .text), ("lastError", .text), ("lastAttemptAt", .text),
            ], order: "id"),
        Table("source_states", [("source", .text), ("cookie", .bytes), ("data", .text)], order: "source"),
        Table(
            "scim_resources",
            [
                ("id", .text), ("kind", .text), ("userName", .text), ("userNameKey", .text), ("displayName", .text),
                ("displayNameKey", .text), ("externalId", .text), ("version", .text), ("created", .text), ("lastModified", .text),
                ("body", .text),
            ], order: "id"),
        Table("scim_members", [("groupId", .text), ("memberId", .text), ("position", .integer)], order: "groupId, memberId"),
        Table("scim_pending_members", [("groupId", .text), ("value", .text), ("position", .integer)], order: "groupId, value"),
        Table("safety_windows", [("source", .text), ("data", .text)], order: "source"),
        Table(
            "audit_checkpoints", [("seq", .integer), ("hash", .text), ("time", .text), ("signature", .text), ("key", .text)],
            order: "seq"),
        Table("audit_checkpoint_deliveries", [("target", .text), ("seq", .integer)], order: "target"),
        Table("exceptions", [("id", .text), ("subject", .text), ("data", .text)], order: "rowid", postgresOrder: "ord"),
        Table("grant_usage", [("grantId", .text), ("lastUsed", .integer)], order: "grantId"),
        Table("agent_usage", [("agent", .text), ("lastUsed", .integer)], order: "agent"),
        Table("registered_agents", [("id", .text), ("source", .text), ("data", .text)], order: "rowid", postgresOrder: "ord"),
        Table("review_campaigns", [("id", .text), ("data", .text)], order: "rowid", postgresOrder: "ord"),
        Table("review_items", [("campaign", .text), ("number", .integer), ("data", .text)], order: "campaign, number"),
        Table("review_reviewers", [("campaign", .text), ("reviewer", .text), ("number", .integer)], order: "campaign, reviewer, number"),
    ]

    /// Rows read and written at a time.
    static let batch = 10_000

    /// Copies the store at `source` into the new, empty store at `target` and verifies the
    /// audit chain on the copy. Only between the two backends: a SQLite file is copied with
    /// SQLite's own backup, a PostgreSQL database with `pg_dump`.
    public static func copy(
        from source: Endpoint, to target: Endpoint, progress: @escaping @Sendable (Progress) -> Void = { _ in }
    ) async throws -> Summary {
        switch (source, target) {
        case (.sqlite(let path), .postgres(let settings)):
            let reader = try SQLiteStateStore(readingAt: path)
            let writer = try await PostgresStateStore(settings: settings)
            do {
                let rows = try await writer.session { session in
                    try reader.pool.read { db in
                        try session.execute("BEGIN")
                        do {
                            try requireEmpty(session: session, describing: target)
                            let rows = try run(
                                counting: { try Int.fetchOne(db, sql: "SELECT count(*) FROM \($0.name)") ?? 0 },
                                reading: { table, body in try readSQLite(table, from: db, body) },
                                writing: { table, rows in try writePostgres(table, rows, into: session) }, progress: progress)
                            // Outbox ids were copied; the next one follows them.
                            try session.execute(
                                "SELECT setval(pg_get_serial_sequence('outbox', 'id'), (SELECT COALESCE(MAX(id), 0) + 1 FROM outbox), false)")
                            try session.execute("COMMIT")
                            return rows
                        } catch {
                            _ = try? session.execute("ROLLBACK")
                            throw error
                        }
                    }
                }
                let summary = try await verified(rows, source: reader, copy: writer)
                await writer.close()
                return summary
            } catch {
                await writer.close()
                throw error
            }
        case (.postgres(let settings), .sqlite(let path)):
            let reader = try await PostgresStateStore(settings: settings, migrating: false)
            do {
                let writer = try newSQLiteStore(at: path)
                do {
                    let pool = writer.pool
                    let rows = try await reader.transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") { session in
                        try pool.write { db in
                            try run(
                                counting: { try session.value(Int.self, "SELECT count(*) FROM \($0.name)") ?? 0 },
                                reading: { table, body in try readPostgres(table, from: session, body) },
                                writing: { table, rows in try writeSQLite(table, rows, into: db) }, progress: progress)
                        }
                    }
                    let summary = try await verified(rows, source: reader, copy: writer)
                    await reader.close()
                    return summary
                } catch {
                    // The file was made for this copy: nothing of it is kept.
                    for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
                    throw error
                }
            } catch {
                await reader.close()
                throw error
            }
        case (.sqlite, .sqlite):
            throw Failure("both ends are SQLite files; copy a stopped store's file with `sqlite3 FILE .backup COPY`")
        case (.postgres, .postgres):
            throw Failure("both ends are PostgreSQL databases; copy one with pg_dump and pg_restore")
        }
    }

    /// Copies every table, counting first so that progress has a total.
    private static func run(
        counting: (Table) throws -> Int, reading: (Table, ([[CopyValue]]) throws -> Void) throws -> Void,
        writing: @escaping (Table, [[CopyValue]]) throws -> Void, progress: @escaping (Progress) -> Void
    ) throws -> [String: Int] {
        var totals: [String: Int] = [:]
        for table in tables { totals[table.name] = try counting(table) }
        let total = totals.values.reduce(0, +)
        var copied = 0
        var rows: [String: Int] = [:]
        for table in tables {
            progress(Progress(table: table.name, copied: copied, total: total))
            try reading(table) { batch in
                try writing(table, batch)
                copied += batch.count
                rows[table.name, default: 0] += batch.count
                progress(Progress(table: table.name, copied: copied, total: total))
            }
        }
        return rows
    }

    /// Checks the copy: the same number of rows in every table, and the audit chain intact
    /// with the same head as the source's.
    private static func verified(
        _ rows: [String: Int], source: some AuditReading, copy: some AuditReading
    ) async throws -> Summary {
        let original = try await source.auditRecords(AuditQuery(afterSeq: max(0, try await source.lastAuditSeq() - 1))).last?.hash
        switch try await copy.verifyAuditChain() {
        case .intact(let records):
            let head = try await copy.auditRecords(AuditQuery(afterSeq: max(0, records - 1))).last?.hash
            guard head == original else {
                throw Failure("the copy's audit chain ends at \(head ?? "nothing"), the source's at \(original ?? "nothing")")
            }
            return Summary(rows: rows, auditRecords: records, auditHead: head)
        case .broken(let seq, let reason):
            throw Failure("the copy's audit chain does not verify from record \(seq): \(reason)")
        }
    }

    /// A value as it is copied.
    enum CopyValue: Sendable {
        case text(String)
        case integer(Int64)
        case bytes(Data)
        case null
    }

    private static func readSQLite(_ table: Table, from db: Database, _ body: ([[CopyValue]]) throws -> Void) throws {
        let rows = try Row.fetchCursor(db, sql: "SELECT \(table.columnList) FROM \(table.name) ORDER BY \(table.sqliteOrder)")
        var batch: [[CopyValue]] = []
        while let row = try rows.next() {
            batch.append(table.columns.enumerated().map { index, column in
                switch column.kind {
                case .text: (row[index] as String?).map(CopyValue.text) ?? .null
                case .integer: (row[index] as Int64?).map(CopyValue.integer) ?? .null
                case .bytes: (row[index] as Data?).map(CopyValue.bytes) ?? .null
                }
            })
            if batch.count == Self.batch {
                try body(batch)
                batch.removeAll(keepingCapacity: true)
            }
        }
        if !batch.isEmpty { try body(batch) }
    }

    private static func readPostgres(_ table: Table, from session: PostgresSession, _ body: ([[CopyValue]]) throws -> Void) throws {
        try session.batches("SELECT \(table.columnList) FROM \(table.name) ORDER BY \(table.postgresOrder)", size: Self.batch) { rows in
            try body(rows.map { row in
                try table.columns.enumerated().map { index, column in
                    switch column.kind {
                    case .text: try row.get(index, as: String?.self).map(CopyValue.text) ?? .null
                    case .integer: try row.get(index, as: Int64?.self).map(CopyValue.integer) ?? .null
                    case .bytes: try row.get(index, as: ByteBuffer?.self).map { .bytes(Data($0.readableBytesView)) } ?? .null
                    }
                }
            })
        }
    }

    private static func writeSQLite(_ table: Table, _ rows: [[CopyValue]], into db: Database) throws {
        let marks = Array(repeating: "?", count: table.columns.count).joined(separator: ", ")
        let statement = try db.cachedStatement(sql: "INSERT INTO \(table.name) (\(table.columnList)) VALUES (\(marks))")
        for row in rows {
            try statement.execute(arguments: StatementArguments(row.map { value -> (any DatabaseValueConvertible)? in
                switch value {
                case .text(let text): text
                case .integer(let number): number
                case .bytes(let data): data
                case .null: nil
                }
            }))
        }
    }

    private static func writePostgres(_ table: Table, _ rows: [[CopyValue]], into session: PostgresSession) throws {
        if table.columns.contains(where: { $0.kind == .bytes }) {
            let marks = Array(repeating: "?", count: table.columns.count).joined(separator: ", ")
            for row in rows {
                try session.execute(
                    "INSERT INTO \(table.name) (\(table.columnList)) VALUES (\(marks))",
                    row.map { value -> any PostgresArgument in
                        switch value {
                        case .text(let text): text
                        case .integer(let number): number
                        case .bytes(let data): data
                        case .null: String?.none
                        }
                    })
            }
            return
        }
        // A column of the batch per array, inserted in the order read.
        var arguments: [any PostgresArgument] = []
        var casts: [String] = []
        for (index, column) in table.columns.enumerated() {
            switch column.kind {
            case .text:
                casts.append("?::text[]")
                arguments.append(PostgresArray(rows.map { if case .text(let text) = $0[index] { text } else { nil } }))
            case .integer:
                casts.append("?::bigint[]")
                arguments.append(PostgresArray(rows.map { if case .integer(let number) = $0[index] { number } else { nil } }))
            case .bytes:
                continue
            }
        }
        let names = table.columns.map(\.name)
        try session.execute(
            """
            INSERT INTO \(table.name) (\(table.columnList))
            SELECT \(names.joined(separator: ", ")) FROM unnest(\(casts.joined(separator: ", "))) WITH ORDINALITY
                AS copied(\(names.joined(separator: ", ")), copy_order)
            ORDER BY copy_order
            """,
            arguments)
    }

    private static func requireEmpty(session: PostgresSession, describing target: Endpoint) throws {
        for table in tables where try session.value(Bool.self, "SELECT EXISTS (SELECT 1 FROM \(table.name))") == true {
            throw Failure("\(target) is not empty (its \(table.name) has rows); copy into a new database")
        }
    }

    /// A new store at `path`: a file that does not exist yet.
    private static func newSQLiteStore(at path: String) throws -> SQLiteStateStore {
        guard !FileManager.default.fileExists(atPath: path) else {
            throw Failure("\(path) exists; copy into a new file, or move it away first")
        }
        return try SQLiteStateStore(path: path)
    }
}
