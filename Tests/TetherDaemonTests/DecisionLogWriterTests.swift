import Foundation
import GRDB
import Logging
import ServiceLifecycle
import Synchronization
import Testing
import TetherCore
import TetherDaemon
import TetherStore

/// The decision log's writer alone, on a real file: retention on an injected clock, the
/// flush at a graceful shutdown, and a batch that cannot be written counted as dropped.
@Suite struct DecisionLogWriterTests {
    static func decision(_ subject: String, at time: Date, allowed: Bool = true) -> DecisionRecord {
        DecisionRecord(
            id: DecisionID.next(at: time), time: time, subject: subject, agent: "support-copilot", scope: "tickets:read",
            resource: "zendesk:queue/Support", allowed: allowed, grant: allowed ? "g_1" : nil, policy: allowed ? "p" : nil,
            policySet: "ps", revision: 7, caller: "gateway")
    }

    static func store() throws -> DecisionLogStore {
        try DecisionLogStore(path: try DaemonProcess.folder().appendingPathComponent("decisions.db").path)
    }

    final class Drops: Sendable {
        let reports = Mutex<[(Int, Date)]>([])
    }

    static func writer(
        _ queue: DecisionQueue, _ store: DecisionLogStore, clock: any WallClock = SystemWallClock(), drops: Drops = Drops(),
        deleteChunk: Int = 10_000, beforeWrite: @escaping @Sendable (Int) async -> Void = { _ in }
    ) -> DecisionLogWriter {
        DecisionLogWriter(
            queue: queue, store: store, retention: .seconds(30 * 86_400), clock: clock,
            dependencies: .init(
                reportDrops: { count, since in drops.reports.withLock { $0.append((count, since)) } }, beforeWrite: beforeWrite),
            logger: Logger(label: "test"), deleteChunk: deleteChunk)
    }

    @Test func retentionDeletesDecisionsOlderThanItInChunks() async throws {
        let clock = ManualWallClock()
        let now = clock.now()
        let store = try Self.store()
        try await store.write([
            Self.decision("old", at: now.addingTimeInterval(-40 * 86_400)),
            Self.decision("old", at: now.addingTimeInterval(-35 * 86_400)),
            Self.decision("old", at: now.addingTimeInterval(-30 * 86_400 - 1)),
            Self.decision("recent", at: now.addingTimeInterval(-29 * 86_400)),
            Self.decision("recent", at: now),
        ])
        let writer = Self.writer(DecisionQueue(capacity: 8), store, clock: clock, deleteChunk: 2)
        await writer.housekeeping()
        #expect(try await store.decisions(DecisionQuery()).map(\.subject) == ["recent", "recent"], "chunks of two until none is left")
        clock.advance(by: 2 * 86_400)
        await writer.housekeeping()
        #expect(try await store.decisions(DecisionQuery()).map(\.subject) == ["recent"], "the clock moved past another")
    }

    @Test func aGracefulShutdownStoresWhatWasQueuedAndReportsTheLastDrops() async throws {
        let store = try Self.store()
        let queue = DecisionQueue(capacity: 3)
        let hold = WriterHold()
        let drops = Drops()
        let writer = Self.writer(queue, store, drops: drops, beforeWrite: { _ in await hold.wait() })
        let group = ServiceGroup(configuration: .init(services: [writer], logger: Logger(label: "test")))
        let running = Task { try await group.run() }
        let now = Date()
        queue.record(Self.decision("first", at: now))
        await hold.untilEntered(1)
        // Shutting down while the first batch is held: three more are queued, one dropped.
        await group.triggerGracefulShutdown()
        for subject in ["a", "b", "c", "dropped"] { queue.record(Self.decision(subject, at: now)) }
        hold.release()
        try await running.value
        #expect(try await store.decisions(DecisionQuery()).map(\.subject) == ["first", "a", "b", "c"])
        #expect(drops.reports.withLock { $0.map(\.0) } == [1])
    }

    @Test func aBatchThatCannotBeWrittenIsCountedAsDropped() async throws {
        let path = try DaemonProcess.folder().appendingPathComponent("decisions.db").path
        let store = try DecisionLogStore(path: path)
        let queue = DecisionQueue(capacity: 8)
        let writer = Self.writer(queue, store)
        queue.record(Self.decision("kept", at: Date()))
        await writer.flush()
        #expect(try await store.count() == 1)
        // The table is gone: the batch fails, is counted as dropped and is not retried forever.
        try await DatabaseQueue(path: path).write { try $0.execute(sql: "DROP TABLE decisions") }
        queue.record(Self.decision("lost", at: Date()))
        queue.record(Self.decision("lost", at: Date()))
        await writer.flush()
        #expect(queue.dropped == 2 && queue.count == 0)
        #expect(queue.takeUnreportedDrops() == 2, "the next decisions.dropped record counts them")
    }
}

/// When the writer's batches go at a priority that competes with the checks: behind, or
/// after an unhurried batch found no free core.
@Suite struct DecisionLogWriterPriorityTests {
    /// A log that notes the priority of each batch and, when told, makes a write take time on
    /// the test's monotonic clock.
    final class NotingLog: DecisionLog {
        let clock = Mutex(ContinuousClock.now)
        let batches = Mutex<[Bool]>([])
        let slowWrites = Mutex(0)
        var location: String { "test" }

        func write(_ decisions: [DecisionRecord], behind: Bool) async throws {
            batches.withLock { $0.append(behind) }
            let slow = slowWrites.withLock { count in
                defer { count = max(0, count - 1) }
                return count > 0
            }
            if slow { advance(.milliseconds(300)) } else { advance(.milliseconds(5)) }
        }

        func advance(_ duration: Duration) { clock.withLock { $0 += duration } }
        func taken() -> [Bool] { batches.withLock { batches in defer { batches = [] }; return batches } }
        func deleteDecisions(before cutoff: Date, limit: Int) async throws -> Int { 0 }
        func decisions(_ query: DecisionQuery) async throws -> [DecisionRecord] { [] }
        func decision(id: String) async throws -> DecisionRecord? { nil }
        func count() async throws -> Int { 0 }
        func bytesUsed() async throws -> Int { 0 }
    }

    static func writer(_ queue: DecisionQueue, _ log: NotingLog) -> DecisionLogWriter {
        DecisionLogWriter(
            queue: queue, store: log, retention: .seconds(86_400),
            dependencies: .init(reportDrops: { _, _ in }, now: { log.clock.withLock { $0 } }),
            logger: Logger(label: "test"), batchSize: 10)
    }

    static func queue(_ queue: DecisionQueue, _ count: Int) {
        for index in 0..<count { queue.record(DecisionLogWriterTests.decision("u\(index)", at: Date())) }
    }

    @Test func aWriterBehindCompetesForTheCoreUntilItHasCaughtUp() async throws {
        let queue = DecisionQueue(capacity: 100)
        let log = NotingLog()
        let writer = Self.writer(queue, log)
        Self.queue(queue, 20)
        await writer.flush()
        #expect(log.taken() == [false, false], "20 waiting of 100: not behind")
        Self.queue(queue, 40)
        await writer.flush()
        // 40 and 30 wait when the first two batches start, a quarter of the room or more;
        // then 20 and 10.
        #expect(log.taken() == [true, true, false, false])
    }

    @Test func aStarvedBatchRaisesTheNextOnesForAWhile() async throws {
        let queue = DecisionQueue(capacity: 1_000)
        let log = NotingLog()
        let writer = Self.writer(queue, log)
        // The first batch waits 300 ms for a core: the rest of this flush, and the next
        // flush within 10 s, compete for one.
        log.slowWrites.withLock { $0 = 1 }
        Self.queue(queue, 30)
        await writer.flush()
        #expect(log.taken() == [false, true, true])
        log.advance(.seconds(5))
        Self.queue(queue, 10)
        await writer.flush()
        #expect(log.taken() == [true])
        // Ten seconds on, the idle class is tried again.
        log.advance(.seconds(6))
        Self.queue(queue, 10)
        await writer.flush()
        #expect(log.taken() == [false])
        // A batch written behind that takes long does not count: it was not waiting for idle.
        log.slowWrites.withLock { $0 = 1 }
        Self.queue(queue, 300)
        await writer.flush()
        #expect(log.taken().prefix(2) == [true, true])
        Self.queue(queue, 10)
        await writer.flush()
        #expect(log.taken() == [false])
    }
}
