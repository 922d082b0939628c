import Foundation
import GRDB
import Synchronization
import TetherCore

/// Which recorded decisions to read (`tether decisions`).
public struct DecisionQuery: Sendable, Hashable {
    public var subject: String?
    public var agent: String?
    /// At or after this time.
    public var since: Date?
    /// Before this time.
    public var until: Date?
    /// Only denies.
    public var deniedOnly: Bool
    /// At most this many, oldest first.
    public var limit: Int?

    public init(
        subject: String? = nil, agent: String? = nil, since: Date? = nil, until: Date? = nil, deniedOnly: Bool = false,
        limit: Int? = nil
    ) {
        self.subject = subject
        self.agent = agent
        self.since = since
        self.until = until
        self.deniedOnly = deniedOnly
        self.limit = limit
    }
}

/// The decision log's storage (SPEC §16): a SQLite file of its own, next to the store by
/// default, so that writing decisions never contends with grant commits.
///
/// A row is kept small: the time in milliseconds, the id's 10 random bytes (the id's other
/// part is the time), the resource inline, and every other string (subject, agent, scope,
/// grant, policy, policy set, caller) as the integer key of a `names` row written once.
/// Indexes on (subject, time), (agent, time) and (time) serve `--subject S --since T`,
/// `--agent A --since T`, time ranges, retention and the lookup of one id.
public final class DecisionLogStore: Sendable {
    let pool: DatabasePool
    /// The file the log lives in.
    public let path: String
    /// Name → key, for the names written; cleared when it grows past ``nameCacheLimit`` or a
    /// write fails (its keys may then not exist).
    private let names = Mutex<[String: Int64]>([:])
    static let nameCacheLimit = 500_000

    /// Opens (creating if needed) the decision log at `path` for the daemon's writer.
    public init(path: String) throws {
        self.path = path
        do {
            let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            var configuration = Configuration()
            configuration.busyMode = .timeout(5)
            configuration.label = "tether-decisions"
            configuration.prepareDatabase { db in
                // Each batch inserts into three indexes: keep their hot pages in memory.
                if !db.configuration.readonly { try db.execute(sql: "PRAGMA cache_size = -65536") }
            }
            pool = try DatabasePool(path: path, configuration: configuration)
            // A decision is worth less than a grant: a commit survives a crash of the process,
            // and a power loss once SQLite checkpoints the log.
            try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") }
            try Self.migrator.migrate(pool)
        } catch {
            throw StoreError(.open, "cannot open the decision log at \(path)", underlying: error)
        }
    }

    /// Opens an existing decision log for reading only, whether or not the daemon runs;
    /// nothing is created. Throws ``StoreError`` naming `path` when it is missing or not a
    /// decision log.
    public init(readingAt path: String) throws {
        self.path = path
        pool = try SQLiteStateStore.openReadOnly(
            path, what: "the decision log", label: "tether-decisions-readonly", migrator: Self.migrator)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("decisions v1") { db in
            try db.execute(
                sql: """
                    CREATE TABLE names (id INTEGER PRIMARY KEY, value TEXT NOT NULL UNIQUE);
                    CREATE TABLE decisions (
                        time INTEGER NOT NULL,
                        nonce BLOB NOT NULL,
                        subject INTEGER NOT NULL,
                        agent INTEGER NOT NULL,
                        scope INTEGER NOT NULL,
                        resource TEXT NOT NULL,
                        allowed INTEGER NOT NULL,
                        grantName INTEGER,
                        policy INTEGER,
                        policySet INTEGER NOT NULL,
                        revision INTEGER NOT NULL,
                        caller INTEGER NOT NULL
                    );
                    CREATE INDEX decisions_by_subject ON decisions (subject, time);
                    CREATE INDEX decisions_by_agent ON decisions (agent, time);
                    CREATE INDEX decisions_by_time ON decisions (time);
                    """)
        }
        return migrator
    }

    // MARK: - Writing

    /// Stores `decisions` in one transaction: all of them or none.
    public func write(_ decisions: [DecisionRecord]) async throws {
        guard !decisions.isEmpty else { return }
        do {
            try await pool.write { db in
                let insert = try db.cachedStatement(
                    sql: """
                        INSERT INTO decisions (time, nonce, subject, agent, scope, resource, allowed, grantName, policy, policySet, revision, caller)
                        VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        """)
                for decision in decisions {
                    let nonce = DecisionID.nonce(decision.id) ?? Array(decision.id.utf8)
                    try insert.execute(arguments: [
                        DecisionID.milliseconds(decision.time), Data(nonce),
                        try self.key(decision.subject, in: db), try self.key(decision.agent, in: db),
                        try self.key(decision.scope, in: db), decision.resource, decision.allowed,
                        try decision.grant.map { try self.key($0, in: db) }, try decision.policy.map { try self.key($0, in: db) },
                        try self.key(decision.policySet, in: db), decision.revision, try self.key(decision.caller, in: db),
                    ])
                }
            }
        } catch {
            // Keys handed out in a transaction that rolled back name nothing.
            names.withLock { $0.removeAll() }
            throw StoreError(.write, "\(decisions.count) decisions were not written to the decision log at \(path)", underlying: error)
        }
    }

    /// The key of `name`, written to `names` the first time.
    private func key(_ name: String, in db: Database) throws -> Int64 {
        if let key = names.withLock({ $0[name] }) { return key }
        let key: Int64
        if let existing = try Int64.fetchOne(db.cachedStatement(sql: "SELECT id FROM names WHERE value = ?"), arguments: [name]) {
            key = existing
        } else {
            try db.cachedStatement(sql: "INSERT INTO names (value) VALUES (?)").execute(arguments: [name])
            key = db.lastInsertedRowID
        }
        names.withLock { cache in
            if cache.count >= Self.nameCacheLimit { cache.removeAll(keepingCapacity: true) }
            cache[name] = key
        }
        return key
    }

    /// Deletes at most `limit` decisions older than `cutoff`, oldest first, in one short
    /// transaction; returns how many. Call again while it returns `limit`.
    public func deleteDecisions(before cutoff: Date, limit: Int) async throws -> Int {
        do {
            return try await pool.write { db in
                try db.execute(
                    sql: "DELETE FROM decisions WHERE rowid IN (SELECT rowid FROM decisions WHERE time < ? ORDER BY time LIMIT ?)",
                    arguments: [DecisionID.milliseconds(cutoff), limit])
                return db.changesCount
            }
        } catch {
            throw StoreError(.write, "old decisions could not be deleted from the decision log at \(path)", underlying: error)
        }
    }

    // MARK: - Reading

    static let selection = """
        SELECT d.time, d.nonce, s.value AS subject, a.value AS agent, sc.value AS scope, d.resource, d.allowed,
            g.value AS grantName, p.value AS policy, ps.value AS policySet, d.revision, c.value AS caller
        FROM decisions d
        JOIN names s ON s.id = d.subject JOIN names a ON a.id = d.agent JOIN names sc ON sc.id = d.scope
        LEFT JOIN names g ON g.id = d.grantName LEFT JOIN names p ON p.id = d.policy
        JOIN names ps ON ps.id = d.policySet JOIN names c ON c.id = d.caller
        """

    /// The decisions `query` selects, oldest first.
    public func decisions(_ query: DecisionQuery) async throws -> [DecisionRecord] {
        try await read { db in
            var clauses: [String] = []
            var arguments: StatementArguments = []
            for (column, name) in [("subject", query.subject), ("agent", query.agent)] {
                guard let name else { continue }
                // A name never written: no decision is about it.
                guard let key = try Int64.fetchOne(db, sql: "SELECT id FROM names WHERE value = ?", arguments: [name]) else {
                    return []
                }
                clauses.append("d.\(column) = ?")
                arguments += [key]
            }
            if let since = query.since {
                clauses.append("d.time >= ?")
                arguments += [DecisionID.milliseconds(since)]
            }
            if let until = query.until {
                clauses.append("d.time < ?")
                arguments += [DecisionID.milliseconds(until)]
            }
            if query.deniedOnly { clauses.append("d.allowed = 0") }
            let filter = clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND ")
            let limit = query.limit.map { " LIMIT \($0)" } ?? ""
            return try Row.fetchAll(db, sql: Self.selection + filter + " ORDER BY d.time, d.rowid" + limit, arguments: arguments)
                .map(Self.record)
        }
    }

    /// The decision with id `id`; nil when the log holds none (never recorded, dropped, or
    /// past retention) or `id` is not a decision id.
    public func decision(id: String) async throws -> DecisionRecord? {
        guard let (milliseconds, nonce) = DecisionID.parse(id) else { return nil }
        return try await read { db in
            try Row.fetchOne(
                db, sql: Self.selection + " WHERE d.time = ? AND d.nonce = ?", arguments: [milliseconds, Data(nonce)]
            ).map(Self.record)
        }
    }

    /// How many decisions the log holds.
    public func count() async throws -> Int {
        try await read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM decisions") ?? 0 }
    }

    /// The bytes the database file takes (pages in use, the log's not counted).
    public func bytesUsed() async throws -> Int {
        try await read { db in
            let pages = try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0
            let free = try Int.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0
            let size = try Int.fetchOne(db, sql: "PRAGMA page_size") ?? 0
            return (pages - free) * size
        }
    }

    static func record(_ row: Row) -> DecisionRecord {
        let milliseconds: Int64 = row["time"]
        let nonce: Data = row["nonce"]
        var high = UInt64(bitPattern: milliseconds) << 16
        var low: UInt64 = 0
        let bytes = [UInt8](nonce)
        if bytes.count == 10 {
            high |= UInt64(bytes[0]) << 8 | UInt64(bytes[1])
            for byte in bytes[2...] { low = low << 8 | UInt64(byte) }
        }
        return DecisionRecord(
            id: bytes.count == 10 ? Hex.encode(prefix: "d_", high: high, low: low) : String(decoding: bytes, as: UTF8.self),
            time: Date(timeIntervalSince1970: Double(milliseconds) / 1000), subject: row["subject"], agent: row["agent"],
            scope: row["scope"], resource: row["resource"], allowed: row["allowed"], grant: row["grantName"],
            policy: row["policy"], policySet: row["policySet"], revision: row["revision"], caller: row["caller"])
    }

    private func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await pool.read(body)
        } catch {
            throw StoreError(.read, "reading the decision log at \(path) failed", underlying: error)
        }
    }
}
