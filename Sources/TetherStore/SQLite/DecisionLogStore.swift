import Foundation
import GRDB
import GRDBSQLite
import Synchronization
import TetherCore

/// The decision log's storage (SPEC §16): a SQLite file of its own, next to the store by
/// default, so that writing decisions never contends with grant commits.
///
/// A row is kept small and cheap to insert: its key, `moment`, is the time in milliseconds
/// times 65,536 plus the row's number within that millisecond, so the table itself is in time
/// order and needs no time column or time index; then the id's 10 random bytes (the id's other
/// part is the time), the resource inline, and every other string (subject, agent, scope,
/// grant, policy, policy set, caller) as the integer key of a `names` row written once. Two
/// indexes, on subject and on agent, hold the moment with each entry: they serve
/// `--subject S --since T` and `--agent A --since T` in time order; time ranges, retention and
/// the lookup of one id use the key. Three B-trees per decision, where a time column and its
/// index made four.
///
/// Writes run on threads of their own at a low scheduling priority (``BackgroundWrites``):
/// a batch of thousands of rows takes tens of milliseconds of a core, and on a small machine
/// those would otherwise be taken from the checks being answered. A batch runs at nice 19,
/// on a core the checks leave free or with a small share of a busy one; a batch `behind`
/// (the writer has fallen behind, or a batch at nice 19 was starved: see
/// `DecisionLogWriter`) runs at the process's own priority instead, so that a machine kept
/// busy loses a little of its check rate rather than decisions. Linux's idle scheduling
/// class was tried for the first: on a saturated machine a batch there gets no core at all,
/// for seconds, and the queue overflowed behind it; and a thread cannot leave that class
/// without privilege.
public final class DecisionLogStore: DecisionLog {
    let pool: DatabasePool
    /// Where writes run; nil for a log opened read-only.
    private let writes: (unhurried: BackgroundWrites, behind: BackgroundWrites)?
    /// The file the log lives in.
    public let path: String

    public var location: String { path }
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
        writes = (
            BackgroundWrites(name: "decision-log", priority: .low),
            BackgroundWrites(name: "decision-log-hi", priority: .normal)
        )
    }

    deinit {
        writes?.unhurried.executor.stop()
        writes?.behind.executor.stop()
    }

    /// Opens an existing decision log for reading only, whether or not the daemon runs;
    /// nothing is created. Throws ``StoreError`` naming `path` when it is missing or not a
    /// decision log.
    public init(readingAt path: String) throws {
        self.path = path
        pool = try SQLiteStateStore.openReadOnly(
            path, what: "the decision log", label: "tether-decisions-readonly", migrator: Self.migrator)
        writes = nil
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
        migrator.registerMigration("decisions v2: the time in the key") { db in
            try db.execute(
                sql: """
                    ALTER TABLE decisions RENAME TO decisions_v1;
                    DROP INDEX decisions_by_subject;
                    DROP INDEX decisions_by_agent;
                    DROP INDEX decisions_by_time;
                    CREATE TABLE decisions (
                        moment INTEGER PRIMARY KEY,
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
                    INSERT INTO decisions
                        SELECT time * 65536 + ROW_NUMBER() OVER (PARTITION BY time ORDER BY rowid) - 1, nonce, subject, agent,
                            scope, resource, allowed, grantName, policy, policySet, revision, caller
                        FROM decisions_v1 ORDER BY time, rowid;
                    DROP TABLE decisions_v1;
                    CREATE INDEX decisions_by_subject ON decisions (subject);
                    CREATE INDEX decisions_by_agent ON decisions (agent);
                    """)
        }
        return migrator
    }

    // MARK: - Writing

    /// Stores `decisions` in one transaction: all of them or none. With `behind`, the batch
    /// is written at the process's priority rather than at nice 19 (see the type's comment).
    public func write(_ decisions: [DecisionRecord], behind: Bool = false) async throws {
        guard !decisions.isEmpty else { return }
        do {
            try await background(behind: behind) { pool in
                try pool.write { db in
                    let keys = try self.keys(for: decisions, in: db)
                    let insert = try db.cachedStatement(
                        sql: """
                            INSERT INTO decisions (moment, nonce, subject, agent, scope, resource, allowed, grantName, policy, policySet, revision, caller)
                            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                            """)
                    let row = RowBinder(insert.sqliteStatement)
                    defer { row.reset() }
                    var moments = try Moments(after: Int64.fetchOne(db, sql: "SELECT max(moment) FROM decisions"))
                    // Oldest first: the rows go to the end of the table, the odd one a little
                    // older than the last batch's newest into its millisecond.
                    for decision in decisions.sorted(by: { $0.time < $1.time }) {
                        row.reset()
                        row.bind(1, try moments.next(DecisionID.milliseconds(decision.time), in: db))
                        row.bindNonce(2, of: decision.id)
                        row.bind(3, keys[decision.subject])
                        row.bind(4, keys[decision.agent])
                        row.bind(5, keys[decision.scope])
                        row.bind(6, decision.resource)
                        row.bind(7, decision.allowed ? 1 : 0)
                        row.bind(8, decision.grant.flatMap { keys[$0] })
                        row.bind(9, decision.policy.flatMap { keys[$0] })
                        row.bind(10, keys[decision.policySet])
                        row.bind(11, Int64(decision.revision))
                        row.bind(12, keys[decision.caller])
                        let code = row.step()
                        guard code == SQLITE_DONE else {
                            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: db.lastErrorMessage, sql: insert.sql)
                        }
                    }
                }
            }
        } catch {
            // Keys handed out in a transaction that rolled back name nothing.
            names.withLock { $0.removeAll() }
            throw StoreError(.write, "\(decisions.count) decisions were not written to the decision log at \(path)", underlying: error)
        }
    }

    /// The key of every name `decisions` use, each looked up once: from the cache, else the
    /// `names` table, where a name seen for the first time is written.
    private func keys(for decisions: [DecisionRecord], in db: Database) throws -> [String: Int64] {
        var wanted = Set<String>()
        for decision in decisions {
            wanted.formUnion([decision.subject, decision.agent, decision.scope, decision.policySet, decision.caller])
            if let grant = decision.grant { wanted.insert(grant) }
            if let policy = decision.policy { wanted.insert(policy) }
        }
        var keys: [String: Int64] = [:]
        var missing: [String] = []
        names.withLock { cache in
            for name in wanted {
                if let key = cache[name] { keys[name] = key } else { missing.append(name) }
            }
        }
        guard !missing.isEmpty else { return keys }
        let select = try db.cachedStatement(sql: "SELECT id FROM names WHERE value = ?")
        let insert = try db.cachedStatement(sql: "INSERT INTO names (value) VALUES (?)")
        for name in missing {
            if let existing = try Int64.fetchOne(select, arguments: [name]) {
                keys[name] = existing
            } else {
                try insert.execute(arguments: [name])
                keys[name] = db.lastInsertedRowID
            }
        }
        names.withLock { cache in
            if cache.count + missing.count > Self.nameCacheLimit { cache.removeAll(keepingCapacity: true) }
            for name in missing { cache[name] = keys[name] }
        }
        return keys
    }

    /// Runs `body` with the pool on a writing thread; GRDB's synchronous write runs its
    /// transaction on the calling thread, so the SQLite work happens there.
    private func background<T: Sendable>(
        behind: Bool = false, _ body: @escaping @Sendable (DatabasePool) throws -> T
    ) async throws -> T {
        guard let writes else {
            throw StoreError(.write, "the decision log at \(path) was opened read-only", underlying: nil)
        }
        return try await (behind ? writes.behind : writes.unhurried).run { try body(self.pool) }
    }

    /// Deletes at most `limit` decisions older than `cutoff`, oldest first, in one short
    /// transaction; returns how many. Call again while it returns `limit`.
    public func deleteDecisions(before cutoff: Date, limit: Int) async throws -> Int {
        do {
            return try await background { pool in
                try pool.write { db in
                    try db.execute(
                        sql: "DELETE FROM decisions WHERE moment IN (SELECT moment FROM decisions WHERE moment < ? ORDER BY moment LIMIT ?)",
                        arguments: [Moments.first(DecisionID.milliseconds(cutoff)), limit])
                    return db.changesCount
                }
            }
        } catch {
            throw StoreError(.write, "old decisions could not be deleted from the decision log at \(path)", underlying: error)
        }
    }

    // MARK: - Reading

    static let selection = """
        SELECT d.moment, d.nonce, s.value AS subject, a.value AS agent, sc.value AS scope, d.resource, d.allowed,
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
                clauses.append("d.moment >= ?")
                arguments += [Moments.first(DecisionID.milliseconds(since))]
            }
            if let until = query.until {
                clauses.append("d.moment < ?")
                arguments += [Moments.first(DecisionID.milliseconds(until))]
            }
            if query.deniedOnly { clauses.append("d.allowed = 0") }
            let filter = clauses.isEmpty ? "" : " WHERE " + clauses.joined(separator: " AND ")
            let limit = query.limit.map { " LIMIT \($0)" } ?? ""
            return try Row.fetchAll(db, sql: Self.selection + filter + " ORDER BY d.moment" + limit, arguments: arguments)
                .map(Self.record)
        }
    }

    /// The decision with id `id`; nil when the log holds none (never recorded, dropped, or
    /// past retention) or `id` is not a decision id.
    public func decision(id: String) async throws -> DecisionRecord? {
        guard let (milliseconds, nonce) = DecisionID.parse(id) else { return nil }
        return try await read { db in
            try Row.fetchOne(
                db, sql: Self.selection + " WHERE d.moment BETWEEN ? AND ? AND d.nonce = ?",
                arguments: [Moments.first(milliseconds), Moments.last(milliseconds), Data(nonce)]
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
        let milliseconds = Moments.milliseconds(row["moment"])
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

/// A low-priority thread that runs the decision log's writes one after another.
private actor BackgroundWrites {
    nonisolated let executor: ThreadExecutor
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    init(name: String, priority: ThreadExecutor.Priority) { executor = ThreadExecutor(name: name, priority: priority) }

    func run<T: Sendable>(_ body: @Sendable () throws -> T) throws -> T { try body() }
}

/// Binds one decision's values to the prepared insert through SQLite's C API: a row of
/// twelve values costs no allocation, where GRDB's `StatementArguments` boxes each one.
private struct RowBinder {
    let statement: SQLiteStatement
    /// SQLite copies what it is given before the call returns.
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

    init(_ statement: SQLiteStatement) { self.statement = statement }

    func reset() {
        sqlite3_reset(statement)
        sqlite3_clear_bindings(statement)
    }

    func bind(_ index: Int32, _ value: Int64?) {
        if let value { sqlite3_bind_int64(statement, index, value) } else { sqlite3_bind_null(statement, index) }
    }

    func bind(_ index: Int32, _ value: String) {
        var value = value
        value.withUTF8 { utf8 in
            _ = utf8.withMemoryRebound(to: CChar.self) { text in
                sqlite3_bind_text(statement, index, text.baseAddress, Int32(text.count), Self.transient)
            }
        }
    }

    /// The 10 bytes after the time of a decision id; an id in any other form (never made by
    /// this version) is kept whole, as its UTF-8 bytes.
    func bindNonce(_ index: Int32, of id: String) {
        if let (high, low) = DecisionID.bits(id) {
            withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 10) { buffer in
                buffer[0] = UInt8(truncatingIfNeeded: high >> 8)
                buffer[1] = UInt8(truncatingIfNeeded: high)
                for byte in 0..<8 { buffer[2 + byte] = UInt8(truncatingIfNeeded: low >> (56 - 8 * UInt64(byte))) }
                _ = sqlite3_bind_blob(statement, index, buffer.baseAddress, 10, Self.transient)
            }
        } else {
            var id = id
            id.withUTF8 { utf8 in _ = sqlite3_bind_blob(statement, index, utf8.baseAddress, Int32(utf8.count), Self.transient) }
        }
    }

    func step() -> Int32 { sqlite3_step(statement) }
}

/// The keys of the decisions table: a millisecond since 1970 times 65,536, plus the row's
/// number within that millisecond.
struct Moments {
    static let perMillisecond: Int64 = 65_536
    /// The last key handed out.
    private var last: Int64?

    /// Keys after `last`, the table's greatest when the batch starts.
    init(after last: Int64?) { self.last = last }

    static func first(_ milliseconds: Int64) -> Int64 { milliseconds * perMillisecond }
    static func last(_ milliseconds: Int64) -> Int64 { first(milliseconds) + perMillisecond - 1 }
    static func milliseconds(_ moment: Int64) -> Int64 { moment >= 0 ? moment / perMillisecond : (moment + 1) / perMillisecond - 1 }

    /// The key of a row answered at `milliseconds`, taken in time order: the next in that
    /// millisecond. A row older than the last key (answered before the previous batch's newest,
    /// queued after it) takes the next free number in its own millisecond, read from the
    /// table; one that finds its millisecond full (65,536 answers in it) takes the next.
    mutating func next(_ milliseconds: Int64, in db: Database) throws -> Int64 {
        var milliseconds = milliseconds
        while true {
            let key: Int64
            if let last, last >= Self.first(milliseconds) {
                if last < Self.last(milliseconds) {
                    key = last + 1
                } else if last == Self.last(milliseconds) {
                    milliseconds += 1
                    continue
                } else {
                    // An older millisecond than the newest written: its next free number.
                    let greatest = try Int64.fetchOne(
                        db, sql: "SELECT max(moment) FROM decisions WHERE moment BETWEEN ? AND ?",
                        arguments: [Self.first(milliseconds), Self.last(milliseconds)])
                    guard let greatest else { return Self.first(milliseconds) }
                    guard greatest < Self.last(milliseconds) else {
                        milliseconds += 1
                        continue
                    }
                    return greatest + 1
                }
            } else {
                key = Self.first(milliseconds)
            }
            last = key
            return key
        }
    }
}
