import Foundation
import GRDB
import Testing
import TetherCore
@testable import TetherStore

/// The decision log's file (SPEC §16): what the queries select, one decision by its id,
/// retention in chunks, a read-only reader, and how few bytes a row takes.
@Suite struct DecisionLogStoreTests {
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

    static func filled() async throws -> (DecisionLogStore, [DecisionRecord]) {
        let store = try DecisionLogStore(path: path())
        let decisions = [
            decision("jdoe", "copilot", minute: 0), decision("alice", "copilot", minute: 1),
            decision("jdoe", "triage", minute: 2, allowed: false), decision("jdoe", "copilot", minute: 3),
            decision("bob", "triage", minute: 4, allowed: false),
        ]
        try await store.write(Array(decisions.prefix(2)))
        try await store.write(Array(decisions.dropFirst(2)))
        return (store, decisions)
    }

    @Test func queriesSelectBySubjectAgentTimeAndAnswer() async throws {
        let (store, all) = try await Self.filled()
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

    @Test func oneDecisionIsFoundByItsID() async throws {
        let (store, all) = try await Self.filled()
        for decision in all { #expect(try await store.decision(id: decision.id) == decision) }
        #expect(try await store.decision(id: DecisionID.next(at: all[0].time)) == nil, "same millisecond, other id")
        #expect(try await store.decision(id: "d_nothex") == nil)
    }

    @Test func oldDecisionsAreDeletedInBoundedChunks() async throws {
        let (store, all) = try await Self.filled()
        #expect(try await store.deleteDecisions(before: all[3].time, limit: 2) == 2)
        #expect(try await store.deleteDecisions(before: all[3].time, limit: 2) == 1)
        #expect(try await store.deleteDecisions(before: all[3].time, limit: 2) == 0)
        #expect(try await store.decisions(DecisionQuery()).map(\.id) == [all[3].id, all[4].id])
    }

    @Test func aReaderOpensTheLogReadOnlyAndNeverCreatesOne() async throws {
        let (store, all) = try await Self.filled()
        let reader = try DecisionLogStore(readingAt: store.path)
        #expect(try await reader.count() == all.count)
        let missing = Self.path()
        #expect(throws: StoreError.self) { try DecisionLogStore(readingAt: missing) }
        #expect(!FileManager.default.fileExists(atPath: missing))
        await #expect(throws: StoreError.self) { try await reader.write([Self.decision("x", "y", minute: 9)]) }
    }

    @Test func theQueriesUseTheirIndexes() async throws {
        let (store, _) = try await Self.filled()
        func plan(_ sql: String) async throws -> String {
            try await store.pool.read { db in
                try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql).map { $0["detail"] as String }.joined(separator: "; ")
            }
        }
        #expect(try await plan("SELECT * FROM decisions WHERE subject = 1 AND time >= 5").contains("decisions_by_subject"))
        #expect(try await plan("SELECT * FROM decisions WHERE agent = 1 AND time >= 5").contains("decisions_by_agent"))
        #expect(try await plan("SELECT * FROM decisions WHERE time >= 5 AND time < 9").contains("decisions_by_time"))
        #expect(try await plan("SELECT * FROM decisions WHERE time = 5 AND nonce = x'00'").contains("decisions_by_time"))
    }
}
