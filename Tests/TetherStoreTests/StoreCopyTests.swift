import Foundation
import GRDB
import PostgresHarness
import Synchronization
import Testing
import TetherCore
@testable import TetherStore

/// `tether store copy` at the level of the store: every table of a store that has rows in all
/// of them goes from SQLite to PostgreSQL and back unchanged, and the copy refuses a target
/// that is not new.
@Suite struct StoreCopyTests {
    /// A SQLite store with at least one row in every table.
    static func filledStore() async throws -> (path: String, store: SQLiteStateStore) {
        let path = SQLiteStateStoreTests.temporaryPath()
        let store = try SQLiteStateStore(path: path)
        var changeset = Sample.granting(
            [Sample.grant("alice"), Sample.grant("bob")], identities: [Sample.identity("alice"), Sample.identity("bob")],
            targets: ["gateway"])
        changeset.lags = [DirectoryLag(identity: "i_alice", userName: "alice", source: .ldap, statusSource: .hr, status: .terminated)]
        changeset.agentStates = [AgentState(agent: "a", sponsorOverride: "boss", quarantined: true, reason: "r")]
        changeset.sourceState = SourceState(source: .ldap, health: .ok, mode: "syncrepl", cookie: Data([0, 1, 2, 255]))
        var window = RevocationWindow()
        window.record(1, at: Sample.time, granularity: 5)
        changeset.windows = [.ldap: window]
        changeset.event = EventRecord(
            event: LifecycleEvent(
                id: "evt-1", source: .hr, kind: .leaver, occurredAt: Sample.time, effectiveAt: Sample.time.addingTimeInterval(60),
                facts: IdentityFacts(employeeNumber: "1001", status: .terminated, version: "v1")),
            status: .scheduled, identity: "i_bob", receivedAt: Sample.time)
        var plan = Plan(scope: .full, steps: [.revoke(Sample.grant("alice"), reason: "gone")])
        plan.held = "too many"
        changeset.heldPlan = plan
        changeset.exceptions = ["x_2", "x_1"].map {
            AccessException(
                id: $0, effect: .deny, subject: "alice", agent: "support-copilot", scope: "tickets:read", resource: "zendesk:queue/*",
                until: nil, reason: "why \($0)", approver: "operator:root", createdAt: Sample.time)
        }
        changeset.registeredAgents = [AgentRegistryStoreTests.agent("ledger-b"), AgentRegistryStoreTests.agent("ledger-a")]
        changeset.reviewCampaigns = ["r_2", "r_1"].map {
            ReviewCampaign(
                id: $0, name: "Q4", scope: .all, reviewer: .sponsor, due: Sample.time.addingTimeInterval(86_400), ifNoAnswer: .keep,
                unusedAfter: 86_400, createdAt: Sample.time, createdBy: "operator:root", linkKey: Data(repeating: 7, count: 32))
        }
        changeset.reviewItems = [
            ReviewItem(
                campaign: "r_1", number: 1, subject: "alice", subjectName: "Alice", agent: "support-copilot",
                grants: [ReviewedGrant(grant: Sample.grant("alice").grant, policy: "support-tickets", grantedAt: Sample.time, lastUsed: nil)],
                reviewers: ["jdoe"], recommendation: .revoke, recommendationReason: "never used")
        ]
        let scim = SCIMWrite(upserts: [
            SCIMResourceRecord(
                id: "u-1", kind: .user, userName: "Alice", externalId: "e-1", version: "1", created: Sample.time, lastModified: Sample.time,
                body: #"{"userName":"Alice"}"#),
            SCIMResourceRecord(
                id: "g-1", kind: .group, displayName: "Support", members: ["u-1"], pendingMembers: ["u-9"], version: "1",
                created: Sample.time, lastModified: Sample.time, body: #"{"displayName":"Support"}"#),
        ])
        try await store.commit(scim, with: [changeset])
        try await store.recordUsage(Usage(grants: [Sample.grant("alice").grant.id: 100], agents: ["support-copilot": 100]))
        _ = try await store.checkpointAuditHead { seq, hash in CheckpointStoreTests.key.checkpoint(seq: seq, hash: hash, time: Sample.time) }
        try await store.markCheckpointDelivered(target: "vault", seq: 1)
        return (path, store)
    }

    /// Every row of every table the copy knows, in a fixed order, as SQLite reads them.
    static func contents(of path: String) throws -> [String: [[DatabaseValue]]] {
        let queue = try DatabaseQueue(path: path)
        return try queue.read { db in
            var contents: [String: [[DatabaseValue]]] = [:]
            for table in StoreCopy.tables {
                contents[table.name] = try Row.fetchAll(db, sql: "SELECT \(table.columnList) FROM \(table.name) ORDER BY \(table.sqliteOrder)")
                    .map { Array($0.databaseValues) }
            }
            return contents
        }
    }

    @Test func everyTableGoesToPostgresAndBackUnchanged() async throws {
        let (path, _) = try await Self.filledStore()
        let original = try Self.contents(of: path)
        let empty = original.filter { $0.value.isEmpty }.map(\.key).sorted()
        #expect(empty.isEmpty, "the filled store has no rows in \(empty)")

        let cluster = try await PostgresCluster.shared()
        let settings = try PostgresSettings(url: cluster.url(database: try await cluster.makeDatabase()), poolSize: 2)
        let seen = ProgressLog()
        let there = try await StoreCopy.copy(from: .sqlite(path: path), to: .postgres(settings)) { seen.add($0) }
        #expect(there.rows == original.mapValues(\.count))
        #expect(there.auditHead != nil && there.auditRecords == original["audit"]?.count)
        let last = try #require(seen.all.last)
        #expect(last.copied == last.total && last.total == original.values.map(\.count).reduce(0, +))
        #expect(seen.all.map(\.copied) == seen.all.map(\.copied).sorted(), "progress never goes back")

        let back = SQLiteStateStoreTests.temporaryPath()
        let returned = try await StoreCopy.copy(from: .postgres(settings), to: .sqlite(path: back))
        #expect(returned.auditHead == there.auditHead)
        let copied = try Self.contents(of: back)
        for table in StoreCopy.tables {
            #expect(copied[table.name] == original[table.name], "\(table.name) changed on its way")
        }
        // The copy is a store like any other: it reads and keeps numbering the chain.
        let store = try SQLiteStateStore(path: back)
        #expect(try await store.exceptions().map(\.id) == ["x_2", "x_1"])
        #expect(try await store.registeredAgents().map(\.id) == ["ledger-b", "ledger-a"])
        #expect(try await store.reviewCampaigns().map(\.id) == ["r_1", "r_2"])
        let next = there.auditRecords + 1
        #expect(try await store.commit(Sample.granting([Sample.grant("carol")], targets: ["gateway"])).auditSeqs == next...next)
        let outbox = try await store.outbox(target: "gateway").map(\.id)
        #expect(outbox == outbox.sorted() && Set(outbox).count == outbox.count)

        // On PostgreSQL too: outbox ids go on after the copied ones.
        let onPostgres = try await PostgresStateStore(settings: settings)
        try await onPostgres.commit(Sample.granting([Sample.grant("dave")], targets: ["gateway"]))
        let ids = try await onPostgres.outbox(target: "gateway").map(\.id)
        #expect(ids == ids.sorted() && Set(ids).count == ids.count && ids.count == (original["outbox"]?.count ?? 0) + 1)
        await onPostgres.close()

        // Neither end may be an existing store.
        await #expect(throws: StoreCopy.Failure.self) { try await StoreCopy.copy(from: .sqlite(path: path), to: .postgres(settings)) }
        await #expect(throws: StoreCopy.Failure.self) { try await StoreCopy.copy(from: .postgres(settings), to: .sqlite(path: back)) }
    }

    /// A table added to the schema and forgotten by the copy would be lost on the way.
    @Test func theCopyKnowsEveryTableOfTheSchema() async throws {
        let path = SQLiteStateStoreTests.temporaryPath()
        _ = try SQLiteStateStore(path: path)
        let tables = try await DatabaseQueue(path: path).read { db in
            try String.fetchAll(
                db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'grdb_%'")
        }
        #expect(Set(tables) == Set(StoreCopy.tables.map(\.name)))
        let cluster = try await PostgresCluster.shared()
        let database = try await cluster.makeDatabase()
        _ = try await PostgresStateStore(settings: PostgresSettings(url: cluster.url(database: database), poolSize: 2))
        let postgres = try await cluster.psql(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename NOT LIKE 'tether\\_%'", database: database)
        // The decision log is not the store's: on SQLite it is a file of its own.
        #expect(Set(postgres.split(separator: "\n").map(String.init)) == Set(StoreCopy.tables.map { $0.name.lowercased() } + ["decisions"]))
    }
}

/// The progress a copy reported, in order.
final class ProgressLog: Sendable {
    private let reported = Mutex<[StoreCopy.Progress]>([])
    func add(_ progress: StoreCopy.Progress) { reported.withLock { $0.append(progress) } }
    var all: [StoreCopy.Progress] { reported.withLock { $0 } }
}
