import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import TetherCore
import TetherStore

/// Stores the check decisions the queue holds (SPEC §16), in batches, one transaction each,
/// into the decision log's own file; once per `interval` it audits the decisions dropped
/// since the last report (`decisions.dropped`) and deletes those older than the retention,
/// a bounded chunk per transaction. A graceful shutdown (SIGTERM) ends it after it has
/// stored what was queued and reported the last drops.
///
/// It runs in the daemon's service group after the public listener has stopped, so no check
/// is answered once its last batch is written.
package final class DecisionLogWriter: Service, Sendable {
    /// What the writer needs from the rest of the daemon, injectable by tests.
    package struct Dependencies: Sendable {
        /// Audits drops: the count and the start of the interval they fell in.
        package var reportDrops: @Sendable (_ count: Int, _ since: Date) async throws -> Void
        /// Called with each batch before it is written; a test holds the writer here.
        package var beforeWrite: @Sendable (_ batch: Int) async -> Void = { _ in }
        /// Counts each decision written (`tether_decisions_written_total`).
        package var written: @Sendable (_ count: Int) -> Void = { _ in }
        /// The monotonic time a batch's write is timed with; a test moves its own.
        package var now: @Sendable () -> ContinuousClock.Instant = { .now }

        package init(
            reportDrops: @escaping @Sendable (_ count: Int, _ since: Date) async throws -> Void,
            beforeWrite: @escaping @Sendable (_ batch: Int) async -> Void = { _ in },
            written: @escaping @Sendable (_ count: Int) -> Void = { _ in },
            now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }
        ) {
            self.reportDrops = reportDrops
            self.beforeWrite = beforeWrite
            self.written = written
            self.now = now
        }
    }

    package let queue: DecisionQueue
    package let store: any DecisionLog
    let retention: Duration
    let interval: Duration
    let clock: any WallClock
    let dependencies: Dependencies
    let logger: Logger
    /// The most decisions in one transaction: 2,000 by default, about 8 ms of a core, so the
    /// writer decides that often whether it is behind and must compete with the checks.
    let batchSize: Int
    /// The most decisions one retention transaction deletes.
    let deleteChunk: Int
    /// How long the writer lets decisions gather once the first arrives: one transaction for
    /// many, not one for each (at 20,000 checks a second, a commit per decision would take a
    /// core from the checks).
    let gather: Duration
    /// An unhurried batch that takes longer than this from start to end found no free core:
    /// the machine is saturated, and the batches of the next ``raisedFor`` are written as if
    /// behind, competing with the checks, before nice 19 is tried again.
    let starved: Duration = .milliseconds(200)
    let raisedFor: Duration = .seconds(10)
    private let stopping = Atomic<Bool>(false)
    private let since: Mutex<Date>
    /// Until when batches are written as if behind, after one was starved.
    private let raisedUntil = Mutex<ContinuousClock.Instant?>(nil)

    package init(
        queue: DecisionQueue, store: any DecisionLog, retention: Duration, interval: Duration = .seconds(60),
        clock: any WallClock = SystemWallClock(), dependencies: Dependencies, logger: Logger, batchSize: Int = 2_000,
        deleteChunk: Int = 10_000, gather: Duration = .milliseconds(200)
    ) {
        self.gather = gather
        self.queue = queue
        self.store = store
        self.retention = retention
        self.interval = interval
        self.clock = clock
        self.dependencies = dependencies
        self.logger = logger
        self.batchSize = batchSize
        self.deleteChunk = deleteChunk
        since = Mutex(clock.now())
    }

    package func run() async {
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.writeUntilStopped() }
                group.addTask {
                    while !self.stopping.load(ordering: .relaxed) {
                        await self.housekeeping()
                        try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
                    }
                }
            }
        } onGracefulShutdown: {
            self.stopping.store(true, ordering: .relaxed)
            self.queue.finish()
        }
        // The listener stopped first: what is queued now is all there will be.
        await flush()
        await reportDrops()
    }

    private func writeUntilStopped() async {
        while !stopping.load(ordering: .relaxed) && !Task.isCancelled {
            await queue.waitForDecisions()
            if gather > .zero && !stopping.load(ordering: .relaxed) {
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.gather) }
            }
            await flush()
        }
    }

    /// Writes everything queued, in batches of at most ``batchSize``. A batch that cannot be
    /// written is lost and counted as dropped; the next is tried. A batch is written at a
    /// priority that competes with the checks, instead of one that only uses a free core,
    /// when the writer is behind (what waits takes a quarter of the queue's room) or an
    /// unhurried batch was recently starved of a core (``starved``): on a saturated machine
    /// such a batch may wait for seconds, and the queue would overflow behind it.
    package func flush() async {
        let taken = queue.takeAll()
        var start = 0
        while start < taken.count {
            // Behind or not is decided again for each batch: the checks may have left a core
            // free, or taken both, since the last.
            let now = dependencies.now()
            let raised = raisedUntil.withLock { until in until.map { now < $0 } ?? false }
            let behind = raised || taken.count - start + queue.count >= queue.capacity / 4
            let batch = Array(taken[start..<min(start + batchSize, taken.count)])
            start += batch.count
            await dependencies.beforeWrite(batch.count)
            let began = dependencies.now()
            do {
                try await store.write(batch, behind: behind)
                let ended = dependencies.now()
                if !behind && ended - began > starved { raisedUntil.withLock { $0 = ended + raisedFor } }
                dependencies.written(batch.count)
            } catch {
                queue.countDropped(batch.count)
                logger.error(
                    "check decisions could not be written to the decision log and are lost; they are counted as dropped",
                    metadata: ["count": "\(batch.count)", "log": "\(store.location)", "error": "\(error)"])
            }
        }
    }

    /// One interval's work: the drops reported, old decisions deleted.
    package func housekeeping() async {
        await reportDrops()
        await deleteExpired()
    }

    /// Audits the decisions dropped since the last report, if any; a failed audit keeps the
    /// count for the next one.
    package func reportDrops() async {
        let count = queue.takeUnreportedDrops()
        guard count > 0 else { return }
        let start = since.withLock { $0 }
        do {
            try await dependencies.reportDrops(count, start)
            since.withLock { $0 = clock.now() }
            logger.warning(
                "check decisions were dropped because the decision log's queue was full; raise check.log.queueSize or sample allows (check.log.allows)",
                metadata: ["count": "\(count)"])
        } catch {
            queue.countDropped(count, reported: false)
            logger.error("the decisions.dropped audit record could not be committed; it is retried", metadata: ["error": "\(error)"])
        }
    }

    /// Deletes the decisions past the retention, a chunk per transaction until none is left.
    package func deleteExpired() async {
        let cutoff = clock.now().addingTimeInterval(-Double(retention.components.seconds))
        var deleted = 0
        do {
            while true {
                let count = try await store.deleteDecisions(before: cutoff, limit: deleteChunk)
                deleted += count
                if count < deleteChunk || stopping.load(ordering: .relaxed) { break }
                // Let the batches waiting meanwhile go first.
                await Task.yield()
            }
        } catch {
            logger.error("old decisions could not be deleted from the decision log; retried next interval", metadata: ["error": "\(error)"])
        }
        if deleted > 0 { logger.info("old decisions deleted from the decision log", metadata: ["count": "\(deleted)"]) }
    }
}
