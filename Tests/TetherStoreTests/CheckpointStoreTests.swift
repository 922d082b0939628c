import Foundation
import GRDB
import Testing
import TetherCore
@testable import TetherStore

/// Audit checkpoints in the store: one only for a head not yet covered, the head's hash as the
/// chain has it, kept across a reopen, never changed, and the target's delivery remembered.
@Suite struct CheckpointStoreTests {
    static let key: AuditSigningKey = try! AuditSigningKey(
        pem: Array("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIG7bJaE9AFH1Sgh1UUNZB1da0bCbhMUeKzGDxWuNkiaE\n-----END PRIVATE KEY-----\n".utf8),
        path: "audit.key")
    static let time = Date(timeIntervalSince1970: 1_795_000_000)

    static func record(_ store: SQLiteStateStore, _ count: Int = 1) async throws {
        var changeset = Changeset(time: time)
        changeset.audit = (0..<count).map { _ in AuditEntry(action: .resyncRequested, actor: .operator("alice"), time: time) }
        try await store.commit(changeset)
    }

    static func sign(_ store: SQLiteStateStore) async throws -> AuditCheckpoint? {
        try await store.checkpointAuditHead { seq, hash in key.checkpoint(seq: seq, hash: hash, time: time) }
    }

    @Test func aCheckpointIsMadeOnlyForRecordsNotYetCovered() async throws {
        let path = SQLiteStateStoreTests.temporaryPath()
        let store = try SQLiteStateStore(path: path)
        #expect(try await Self.sign(store) == nil, "an empty chain has no head")
        try await Self.record(store, 3)
        let first = try #require(try await Self.sign(store))
        #expect(first.seq == 3)
        let head = try #require(try await store.auditRecords(AuditQuery(afterSeq: 2)).first)
        #expect(first.hash == head.hash)
        #expect(try await Self.sign(store) == nil, "nothing added since")
        try await Self.record(store)
        let second = try #require(try await Self.sign(store))
        #expect(second.seq == 4)
        #expect(try await store.auditCheckpoints(after: nil, limit: nil) == [first, second])
        #expect(try await store.auditCheckpoints(after: 3, limit: nil) == [second])

        // Kept across a reopen, and read the same by a read-only opening (`tether audit`).
        let reopened = try SQLiteStateStore(readingAt: path)
        #expect(try await reopened.auditCheckpoints(after: nil, limit: nil) == [first, second])
        #expect(try await reopened.verifyAuditChain(against: [first, second], trusting: Self.key.publicKey) == .intact(records: 4))
    }

    @Test func checkpointsAreNeverUpdatedOrDeleted() async throws {
        let store = try SQLiteStateStore(path: SQLiteStateStoreTests.temporaryPath())
        try await Self.record(store)
        _ = try await Self.sign(store)
        #expect(throws: (any Error).self) { try store.pool.write { try $0.execute(sql: "UPDATE audit_checkpoints SET seq = 9") } }
        #expect(throws: (any Error).self) { try store.pool.write { try $0.execute(sql: "DELETE FROM audit_checkpoints") } }
        #expect(try await store.auditCheckpoints(after: nil, limit: nil).map(\.seq) == [1])
    }

    @Test func aTargetsDeliveryIsRememberedAndNeverGoesBack() async throws {
        let path = SQLiteStateStoreTests.temporaryPath()
        let store = try SQLiteStateStore(path: path)
        #expect(try await store.checkpointDelivered(target: "audit.checkpointTarget") == 0)
        try await store.markCheckpointDelivered(target: "audit.checkpointTarget", seq: 7)
        try await store.markCheckpointDelivered(target: "audit.checkpointTarget", seq: 5)
        #expect(try await SQLiteStateStore(path: path).checkpointDelivered(target: "audit.checkpointTarget") == 7)
    }
}
