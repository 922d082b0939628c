import Foundation
import GRDB
import PostgresHarness
import Testing
import TetherCore
@testable import TetherStore

/// The decision log (SPEC §16), in its own SQLite file and in the PostgreSQL store's table:
/// what the queries select, one decision by its id, retention in chunks, a read-only reader,
/// and how few bytes a row takes.
@Suite struct DecisionLogStoreTests {
    /// Where a decision log lives.
    enum LogBackend: String, CaseIterable, CustomTestStringConvertible, Sendable {
        case sqlite
        case postgres

        var testDescription: String { rawValue }

        func make() async throws -> any DecisionLog {
            switch self {
            case .sqlite:
                return try DecisionLogStore(path: DecisionLogStoreTests.path())
            case .postgres:
                let cluster = try await PostgresCluster.shared()
                let database = try await cluster.makeDatabase()
                let store = try await PostgresStateStore(settings: PostgresSettings(url: cluster.url(database: database), poolSize: 2))
                return PostgresDecisionLog(store: store)
            }
        }
    }

    static func path() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("tether-decisions-\(UUID().uuidString)/decisions.db").path
    }

    static let start = Date(timeIntervalSince1970: 1_795_000_000)

    static func decision(_ subject: String, _ agent: String, minute: Int, allowed: Bool = true) -> DecisionRecord {
        let time = start.addingTimeInterval(Double(minute) * 60)
        return DecisionRecord(
            id: DecisionID.next(at: time), time: time, subject: subject, agent: agent, scope: "tickets:read",
            resource: "zendesk:queue/\(minute)", allowed: allowed, grant: allowed ? "g_\(subject)" : nil,
            policy: allowed ? "support-tickets" : nil, policySet: "sha256:abc", revision: minute, caller: "gateway-eu")
    }

    static func filled(_ backend: LogBackend = .sqlite) async throws -> (any DecisionLog, [DecisionRecord]) {
        let store = try await backend.make()
        let decisions = [
            decision("jdoe", "copilot", minute: 0), decision("alice", "copilot", minute: 1),
            decision("jdoe", "triage", minute: 2, allowed: false), decision("jdoe", "copilot", minute: 3),
            decision("bob", "triage", minute: 4, allowed: false),
        ]
        try await store.write(Array(decisions.prefix(2)))
        try await store.write(Array(decisions.dropFirst(2)))
        return (store, decisions)
    }

    @Test(arguments: LogBackend.allCases)
    func queriesSelectBySubjectAgentTimeAndAnswer(_ backend: LogBackend) async throws {
        let (store, all) = try await Self.filled(backend)
        func ids(_ query: DecisionQuery) async throws -> [String] { try await store.decisions(query).map(\.id) }
        #expect(try await store.decisions(DecisionQuery()) == all, "every field read back as written, oldest first")
        #expect(try await ids(DecisionQuery(subject: "jdoe")) == [all[0].id, all[2].id, all[3].id])
        #expect(try await ids(DecisionQuery(agent: "triage")) == [all[2].id, all[4].id])
        #expect(try await ids(DecisionQuery(subject: "jdoe", agent: "copilot")) == [all[0].id, all[3].id])
        #expect(try await ids(DecisionQuery(subject: "jdoe", since: all[2].time)) == [all[2].id, all[3].id])
        #expect(try await ids(DecisionQuery(since: all[1].time, until: all[3].time)) == [all[1].id, all[2].id], "until is exclusive")
        #expect(try await ids(DecisionQuery(deniedOnly: true)) == [all[2].id, all[4].id])
        #expect(try await ids(DecisionQuery(subject: "jdoe", limit: 2)) == [all[0].id, all[2].id])
        #expect(try await ids(DecisionQuery(subject: "nobody")).isEmpty)
        #expect(try await ids(DecisionQuery(agent: "jdoe")).isEmpty, "a name is matched in its own column only")
    }

    @Test(arguments: LogBackend.allCases)
    func oneDecisionIsFoundByItsID(_ backend: LogBackend) async throws {
        let (store, all) = try await Self.filled(backend)
        for decision in all { #expect(try await store.decision(id: decision.id) == decision) }
        #expect(try await store.decision(id: DecisionID.next(at: all[0].time)) == nil, "same millisecond, other id")
        #expect(try await store.decision(id: "d_nothex") == nil)
    }

    @Test(arguments: LogBackend.allCases)
    func oldDecisionsAreDeletedInBoundedChunks(_ backend: LogBackend) async throws {
        let (store, all) = try await Self.filled(backend)
        #expect(try await store.deleteDecisions(before: all[3].time, limit: 2) == 2)
        #expect(try await store.deleteDecisions(before: all[3].time, limit: 2) == 1)
        #expect(try await store.deleteDecisions(before: all[3].time, limit: 2) == 0)
        #expect(try await store.decisions(DecisionQuery()).map(\.id) == [all[3].id, all[4].id])
    }

    @Test func aReaderOpensTheLogReadOnlyAndNeverCreatesOne() async throws {
        let (store, all) = try await Self.filled()
        let reader = try DecisionLogStore(readingAt: store.location)
        #expect(try await reader.count() == all.count)
        let missing = Self.path()
        #expect(throws: StoreError.self) { try DecisionLogStore(readingAt: missing) }
        #expect(!FileManager.default.fileExists(atPath: missing))
        await #expect(throws: StoreError.self) { try await reader.write([Self.decision("x", "y", minute: 9)]) }
    }

    @Test func theQueriesUseTheirIndexesAndTheKeyForTime() async throws {
        let (log, _) = try await Self.filled()
        let store = try #require(log as? DecisionLogStore)
        func plan(_ sql: String) async throws -> String {
            try await store.pool.read { db in
                try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql).map { $0["detail"] as String }.joined(separator: "; ")
            }
        }
        #expect(try await plan("SELECT * FROM decisions WHERE subject = 1 AND moment >= 5 ORDER BY moment").contains("decisions_by_subject"))
        #expect(try await plan("SELECT * FROM decisions WHERE agent = 1 AND moment >= 5 ORDER BY moment").contains("decisions_by_agent"))
        #expect(try await !plan("SELECT * FROM decisions WHERE subject = 1 AND moment >= 5 ORDER BY moment").contains("TEMP B-TREE"))
        #expect(try await plan("SELECT * FROM decisions WHERE moment >= 5 AND moment < 9").contains("INTEGER PRIMARY KEY"))
    }

    /// Checks answered in one millisecond share its key range; a decision queued after a newer
    /// batch was written goes back into its own millisecond, and all read back in time order.
    @Test func decisionsOfOneMillisecondAndLateOnesKeepTheirTimeAndOrder() async throws {
        let store = try DecisionLogStore(path: Self.path())
        let base = DecisionID.milliseconds(Self.start) + 5
        // Times the log keeps exactly: whole milliseconds, as the ids carry them.
        func time(_ offset: Int64) -> Date { Date(timeIntervalSince1970: Double(base + offset) / 1000) }
        func at(_ offset: Int64, _ subject: String) -> DecisionRecord {
            var decision = Self.decision(subject, "copilot", minute: 0)
            decision.time = time(offset)
            decision.id = DecisionID.next(at: decision.time)
            return decision
        }
        let first = [at(0, "a"), at(0, "b"), at(2, "c")]
        // Queued after the first batch was written: one in its newest millisecond, one in an
        // older one, one out of order inside the batch.
        let second = [at(2, "d"), at(4, "f"), at(1, "e"), at(0, "g")]
        try await store.write(first)
        try await store.write(second)
        let read = try await store.decisions(DecisionQuery())
        #expect(read.count == 7)
        #expect(read.map(\.subject) == ["a", "b", "g", "e", "c", "d", "f"])
        for decision in first + second {
            #expect(try await store.decision(id: decision.id) == decision, "\(decision.subject) found by its id, with its time")
        }
        #expect(try await store.decisions(DecisionQuery(since: time(1), until: time(3))).map(\.subject) == ["e", "c", "d"])
    }

    /// A log written by the first version of its schema (a time column and index) is moved to
    /// the keyed one on open, every decision kept and found by its id.
    @Test func aLogOfTheFirstSchemaIsMovedToTheKeyedOne() async throws {
        let path = Self.path()
        try FileManager.default.createDirectory(
            atPath: URL(fileURLWithPath: path).deletingLastPathComponent().path, withIntermediateDirectories: true)
        let old = Self.decision("jdoe", "copilot", minute: 0)
        let twin = DecisionRecord(
            id: DecisionID.next(at: old.time), time: old.time, subject: "alice", agent: "copilot", scope: "tickets:read",
            resource: "zendesk:queue/0", allowed: false, policySet: "sha256:abc", revision: 1, caller: "gateway-eu")
        do {
            let pool = try DatabasePool(path: path)
            try DecisionLogStore.migrator.migrate(pool, upTo: "decisions v1")
            try await pool.write { db in
                try db.execute(sql: "INSERT INTO names (id, value) VALUES (1,'jdoe'),(2,'copilot'),(3,'tickets:read'),(4,'g_jdoe'),(5,'support-tickets'),(6,'sha256:abc'),(7,'gateway-eu'),(8,'alice')")
                for (decision, subject) in [(old, 1), (twin, 8)] {
                    let nonce = try #require(DecisionID.parse(decision.id)).nonce
                    try db.execute(
                        sql: "INSERT INTO decisions VALUES (?, ?, ?, 2, 3, ?, ?, ?, ?, 6, ?, 7)",
                        arguments: [
                            DecisionID.milliseconds(decision.time), Data(nonce), subject, decision.resource, decision.allowed,
                            decision.allowed ? 4 : nil, decision.allowed ? 5 : nil, decision.revision,
                        ])
                }
            }
        }
        let store = try DecisionLogStore(path: path)
        #expect(try await store.decision(id: old.id) == old)
        #expect(try await store.decision(id: twin.id) == twin)
        #expect(try await store.decisions(DecisionQuery(subject: "alice")).map(\.id) == [twin.id])
        try await store.write([Self.decision("bob", "copilot", minute: 0)])
        #expect(try await store.count() == 3, "a new decision in the same millisecond takes the next key")
    }

    /// Text that COPY's format gives a meaning (tab, line ends, backslash, `\N`) is stored as
    /// it was asked, and the table's size is counted.
    @Test func anyTextIsStoredAsAskedInPostgreSQL() async throws {
        let log = try await LogBackend.postgres.make()
        var odd = Self.decision("tab\there", "line\nend\r", minute: 7)
        odd.resource = #"back\slash \N and "quotes""#
        odd.caller = "ünï cödé"
        odd.grant = nil
        try await log.write([odd, Self.decision("plain", "copilot", minute: 8)])
        #expect(try await log.decision(id: odd.id) == odd)
        #expect(try await log.decisions(DecisionQuery(subject: "tab\there")) == [odd])
        #expect(try await log.count() == 2)
        #expect(try await log.bytesUsed() > 0)
    }
}
