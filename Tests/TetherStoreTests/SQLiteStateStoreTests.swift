import Foundation
import GRDB
import Testing
import TetherCore
@testable import TetherStore

/// Behaviour of the SQLite file itself: migrations, atomicity, tamper evidence.
@Suite struct SQLiteStateStoreTests {
    static func temporaryPath() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("tether-sqlite-\(UUID().uuidString)/tether.db").path
    }

    @Test func migratesAnEmptyFileAndReopensIt() async throws {
        let path = Self.temporaryPath()
        _ = try SQLiteStateStore(path: path)
        let reopened = try SQLiteStateStore(path: path)
        #expect(try await reopened.grantCount() == 0)
        let db = try DatabaseQueue(path: path)
        let applied = try await db.read { try String.fetchAll($0, sql: "SELECT identifier FROM grdb_migrations ORDER BY rowid") }
        #expect(applied.first == "v1: identities, grants, events, plans, audit, outbox")
        let tables = try await db.read { try String.fetchSet($0, sql: "SELECT name FROM sqlite_master WHERE type = 'table'") }
        #expect(tables.isSuperset(of: ["identities", "identity_links", "grants", "agent_states", "events", "scheduled_leavers", "plans", "audit", "outbox", "source_states"]))
        let mode = try await db.read { try String.fetchOne($0, sql: "PRAGMA journal_mode") }
        #expect(mode == "wal")
    }

    /// A store written before v8 keeps its audit chain through the rebuild that drops the
    /// index of the hashes: every record, the chain intact, the other indexes and the
    /// append-only triggers as before.
    @Test func theAuditChainOfAnOlderStoreSurvivesTheRebuildOfItsTable() async throws {
        let written = try SQLiteStateStore(path: Self.temporaryPath())
        try await written.commit(Sample.granting([Sample.grant("alice"), Sample.grant("bob")]))
        try await written.commit(Sample.granting([Sample.grant("carol")]))
        let columns = "seq, hash, prev, action, actor, subject, agent, grantId, time, line"
        let rows = try await DatabaseQueue(path: written.path).read { db in
            try Row.fetchAll(db, sql: "SELECT \(columns) FROM audit ORDER BY seq").map { Array($0.databaseValues) }
        }
        #expect(rows.count == 3)

        let path = Self.temporaryPath()
        try FileManager.default.createDirectory(
            atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path, withIntermediateDirectories: true)
        let older = try DatabaseQueue(path: path)
        try SQLiteStateStore.migrator.migrate(older, upTo: "v7: revocation windows")
        try await older.write { db in
            for row in rows {
                try db.execute(
                    sql: "INSERT INTO audit (\(columns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", arguments: StatementArguments(row))
            }
        }
        #expect(try await Self.indexes(path).keys.contains("sqlite_autoindex_audit_1"), "before v8, the hashes had an index")
        try older.close()

        let store = try SQLiteStateStore(path: path)
        #expect(try await store.verifyAuditChain() == .intact(records: 3))
        #expect(try await store.auditRecords(AuditQuery()).map(\.seq) == [1, 2, 3])
        let indexes = try await Self.indexes(path)
        #expect(!indexes.keys.contains("sqlite_autoindex_audit_1"))
        #expect(indexes.keys.contains("audit_subject") && indexes.keys.contains("audit_agent") && indexes.keys.contains("audit_grant"))
        let db = try DatabaseQueue(path: path)
        await #expect(throws: DatabaseError.self) { try await db.write { try $0.execute(sql: "DELETE FROM audit") } }
        await #expect(throws: DatabaseError.self) { try await db.write { try $0.execute(sql: "UPDATE audit SET actor = 'x'") } }
        // The chain goes on from the rebuilt table.
        try await store.commit(Sample.granting([Sample.grant("dave")]))
        #expect(try await store.verifyAuditChain() == .intact(records: 4))
    }

    /// A failure injected by the database itself halfway through a commit (after grants and
    /// audit rows were written, at the first outbox row) leaves nothing behind.
    @Test func aFailureInTheMiddleOfACommitLeavesNoPartialState() async throws {
        let path = Self.temporaryPath()
        let store = try SQLiteStateStore(path: path)
        try await store.commit(Sample.granting([Sample.grant("carol")], targets: ["gateway"]))

        let db = try DatabaseQueue(path: path)
        try await db.write { try $0.execute(sql: "CREATE TRIGGER injected BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'injected failure'); END") }

        var changeset = Sample.granting([Sample.grant("alice"), Sample.grant("bob")], identities: [Sample.identity("alice")], targets: ["gateway"])
        changeset.event = EventRecord(
            event: LifecycleEvent(id: "evt-1", source: .hr, kind: .joiner, occurredAt: Sample.time, facts: IdentityFacts(version: "v")),
            status: .applied, identity: "i_alice", receivedAt: Sample.time)
        let error = await #expect(throws: StoreError.self) { try await store.commit(changeset) }
        #expect(error?.code == .write)
        #expect(String(describing: error).contains("injected failure"))

        #expect(try await store.grants(subject: nil, agent: nil).map(\.grant.subject) == ["carol"])
        #expect(try await store.auditRecords(AuditQuery()).count == 1)
        #expect(try await store.outbox(target: nil).count == 1)
        #expect(try await store.identity(id: "i_alice") == nil)
        #expect(try await store.eventStatus(id: "evt-1") == nil)
        #expect(try await store.verifyAuditChain() == .intact(records: 1))

        try await db.write { try $0.execute(sql: "DROP TRIGGER injected") }
        try await store.commit(changeset)
        #expect(try await store.grantCount() == 3)
    }

    static func indexes(_ path: String) async throws -> [String: String] {
        let db = try DatabaseQueue(path: path)
        return try await db.read { db in
            var indexes: [String: String] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT name, sql FROM sqlite_master WHERE type = 'index'") {
                indexes[row["name"]] = row["sql"] ?? ""
            }
            return indexes
        }
    }

    /// A bulk commit into empty tables builds their indexes after the rows: the schema after
    /// it is the schema before it, and the indexes answer.
    @Test func aBulkCommitIntoAnEmptyStoreEndsWithTheSameIndexes() async throws {
        let path = Self.temporaryPath()
        let store = try SQLiteStateStore(path: path, bulkCommitRows: 2)
        let before = try await Self.indexes(path)
        #expect(before.keys.contains("audit_grant") && before.keys.contains("grants_agent"))

        let grants = [Sample.grant("alice"), Sample.grant("bob"), Sample.grant("carol")]
        try await store.commit(Sample.granting(grants, identities: [Sample.identity("alice")], targets: ["gateway"]))
        #expect(try await Self.indexes(path) == before)
        #expect(try await store.grants(subject: nil, agent: "support-copilot").count == 3)
        #expect(try await store.auditRecords(AuditQuery(grant: grants[1].grant.id)).count == 1)
        #expect(try await store.outboxBacklog(target: "gateway").pending == 3)
        #expect(try await store.verifyAuditChain() == .intact(records: 3))
        // Each grant cites its own record, numbered before the records were sealed and written.
        for stored in try await store.grants(subject: nil, agent: nil) {
            let record = try #require(try await store.auditRecords(AuditQuery(grant: stored.grant.id)).first)
            #expect(record.values["seq"] == .int(try #require(stored.auditSeq)))
        }

        // Tables that already hold rows keep their indexes through a later bulk commit.
        try await store.commit(Sample.granting([Sample.grant("dave"), Sample.grant("erin")], targets: ["gateway"]))
        #expect(try await Self.indexes(path) == before)
        #expect(try await store.verifyAuditChain() == .intact(records: 5))
    }

    /// Of an empty table's secondary indexes, a bulk commit defers those whose keys arrive out
    /// of order and keeps those it fills in key order (each deferred one is built by reading
    /// its whole table back). Every name it keeps is one the schema has: a renamed index would
    /// otherwise quietly be deferred again.
    @Test func aBulkCommitKeepsTheIndexesItFillsInKeyOrder() async throws {
        let path = Self.temporaryPath()
        let store = try SQLiteStateStore(path: path, bulkCommitRows: 2)
        let schema = try await Self.indexes(path)
        #expect(SQLiteStateStore.bulkIndexesFilledInOrder.isSubset(of: Set(schema.keys)))

        let (deferred, during) = try await store.pool.write { db in
            let deferred = try SQLiteStateStore.dropIndexesOfEmptyBulkTables(in: db)
            let during = try String.fetchSet(db, sql: "SELECT name FROM sqlite_master WHERE type = 'index'")
            for statement in deferred { try db.execute(sql: statement) }
            return (deferred, during)
        }
        #expect(SQLiteStateStore.bulkIndexesFilledInOrder.isSubset(of: during))
        #expect(!during.contains("audit_grant") && !during.contains("outbox_target"))
        #expect(deferred.contains { $0.contains("audit_grant") })
        #expect(!deferred.contains { statement in SQLiteStateStore.bulkIndexesFilledInOrder.contains { statement.contains("\($0) ") } })
        #expect(try await Self.indexes(path) == schema)
    }

    /// A bulk commit's records are sealed on another thread at most a bounded number ahead of
    /// the commit, so ten million records never wait sealed at once; in many chunks, the chain
    /// is the one sealing them in the commit gives.
    @Test(arguments: [true, false]) func auditRecordsAreSealedAheadOfTheCommitWithinABound(_ concurrently: Bool) async throws {
        let store = try SQLiteStateStore(path: Self.temporaryPath())
        let entries = (0..<1_000).map {
            AuditEntry(action: .grantGranted, actor: .ldap, time: Sample.time, fields: ["grant": "g_\($0)", "subject": "u\($0)", "agent": "a"])
        }
        let (written, ahead) = try await store.pool.write { db in
            let batch = try AuditBatch(entries, in: db, concurrently: concurrently, size: .init(chunk: 16, capacity: 64))
            defer { batch.end() }
            return (try batch.insert(in: db), batch.mostSealedAhead)
        }
        #expect(written == 1...1_000)
        if concurrently {
            let ahead = try #require(ahead)
            #expect(ahead > 0 && ahead <= 64, "\(ahead) records waited sealed")
        } else {
            #expect(ahead == nil)
        }
        #expect(try await store.verifyAuditChain() == .intact(records: 1_000))
        let last = try #require(try await store.auditRecords(AuditQuery(grant: "g_999")).first)
        #expect(last.values["seq"] == .int(1_000))
        #expect(last.hash == AuditBatch.seal(entries, first: 1, prev: AuditRecord.genesis).last?.hash)
    }

    /// A bulk commit that fails after dropping the indexes leaves the store as it was, indexes included.
    @Test func aFailedBulkCommitKeepsTheIndexesAndWritesNothing() async throws {
        let path = Self.temporaryPath()
        let store = try SQLiteStateStore(path: path, bulkCommitRows: 2)
        let before = try await Self.indexes(path)
        let db = try DatabaseQueue(path: path)
        try await db.write { try $0.execute(sql: "CREATE TRIGGER injected BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'injected failure'); END") }

        let changeset = Sample.granting([Sample.grant("alice"), Sample.grant("bob")], targets: ["gateway"])
        await #expect(throws: StoreError.self) { try await store.commit(changeset) }
        #expect(try await Self.indexes(path) == before)
        #expect(try await store.grantCount() == 0)
        #expect(try await store.auditRecords(AuditQuery()).isEmpty)

        try await db.write { try $0.execute(sql: "DROP TRIGGER injected") }
        try await store.commit(changeset)
        #expect(try await Self.indexes(path) == before)
        #expect(try await store.grantCount() == 2)
    }

    /// Commits leave the log to a checkpoint on another connection: soon after a commit the
    /// database file itself holds the rows, the writer having copied nothing. The checkpointer
    /// is a service its owner runs (the daemon runs it in its service group).
    @Test func theLogIsCheckpointedIntoTheDatabaseFileAfterACommit() async throws {
        let path = Self.temporaryPath()
        let store = try SQLiteStateStore(path: path)
        let checkpointer = Task { await store.logCheckpointer.run() }
        defer { checkpointer.cancel() }
        try await store.commit(Sample.granting([Sample.grant("alice"), Sample.grant("bob")]))
        let deadline = ContinuousClock.now + .seconds(30)
        func mainFileGrants() throws -> Int? {
            // The database file alone, opened as an immutable copy: what a checkpoint put there.
            let copy = path + ".copy"
            try? FileManager.default.removeItem(atPath: copy)
            try FileManager.default.copyItem(atPath: path, toPath: copy)
            let db = try DatabaseQueue(path: copy)
            return try db.read { db in
                try db.tableExists("grants") ? Int.fetchOne(db, sql: "SELECT COUNT(*) FROM grants") : nil
            }
        }
        var grants = try mainFileGrants()
        while grants != 2, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
            grants = try mainFileGrants()
        }
        #expect(grants == 2)
        #expect(try await store.grantCount() == 2)
    }

    @Test func auditRecordsCannotBeUpdatedOrDeletedThroughSQL() async throws {
        let path = Self.temporaryPath()
        let store = try SQLiteStateStore(path: path)
        try await store.commit(Sample.granting([Sample.grant("alice")]))
        let db = try DatabaseQueue(path: path)
        await #expect(throws: DatabaseError.self) {
            try await db.write { try $0.execute(sql: "UPDATE audit SET actor = 'x'") }
        }
        await #expect(throws: DatabaseError.self) {
            try await db.write { try $0.execute(sql: "DELETE FROM audit") }
        }
    }

    /// Someone with write access to the file drops the guard and edits one byte: verify names the record.
    @Test func verifyNamesTheFirstTamperedRecord() async throws {
        let path = Self.temporaryPath()
        let store = try SQLiteStateStore(path: path)
        for user in ["alice", "bob", "carol"] { try await store.commit(Sample.granting([Sample.grant(user)])) }
        #expect(try await store.verifyAuditChain() == .intact(records: 3))
        let db = try DatabaseQueue(path: path)
        try await db.write { db in
            try db.execute(sql: "DROP TRIGGER audit_is_append_only_update")
            try db.execute(sql: "UPDATE audit SET line = replace(line, '\"bob\"', '\"bob2\"') WHERE seq = 2")
        }
        guard case .broken(let seq, let reason) = try await store.verifyAuditChain() else {
            Issue.record("tampering went unnoticed")
            return
        }
        #expect(seq == 2)
        #expect(reason == "hash does not match the record's content")
    }

    @Test("the writer syncs each commit only when asked to", arguments: [false, true])
    func commitsSyncAsConfigured(syncEachCommit: Bool) async throws {
        let store = try SQLiteStateStore(path: Self.temporaryPath(), syncEachCommit: syncEachCommit)
        // SQLite's levels: 1 NORMAL, 2 FULL. Every commit goes through the one writer connection.
        let level = try await store.pool.write { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") }
        #expect(level == (syncEachCommit ? 2 : 1))
    }

    @Test("a store opened with the default configuration syncs every commit before acknowledging it")
    func theDefaultStoreSyncsEachCommit() async throws {
        let store = try SQLiteStateStore(path: Self.temporaryPath())
        // SQLite's levels: 1 NORMAL, 2 FULL; in WAL mode FULL syncs the log at each commit.
        let level = try await store.pool.write { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") }
        #expect(level == 2)
        let mode = try await store.pool.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }
        #expect(mode == "wal")
    }

    @Test func aStoreThatCannotBeOpenedSaysWhere() {
        let error = #expect(throws: StoreError.self) { _ = try SQLiteStateStore(path: "/proc/tether-cannot-be-here/tether.db") }
        #expect(error?.code == .open)
        #expect(String(describing: error).contains("/proc/tether-cannot-be-here/tether.db"))
    }
}
