import Logging
import ServiceLifecycle
import Synchronization
import TetherEngine
import TetherStore

/// Writes the check index's record of last uses (``UsageRecorder``) to the store in one batch
/// every `usage.flushInterval`, off the request path, and once more on graceful shutdown, so
/// last uses survive a restart to within the interval (SPEC §15 "Usage").
///
/// A batch the store refuses is kept and written with the next one: nothing recorded is lost
/// while the daemon runs.
package final class UsageFlushService: Service, Sendable {
    let recorder: UsageRecorder
    let store: any UsageStore
    let interval: Duration
    let clock: any Clock<Duration>
    let logger: Logger
    /// Uses taken from the recorder that the store has not accepted yet.
    private let unwritten = Mutex(Usage())

    /// - Parameter clock: what the interval is measured on; tests pass one they move.
    package init(
        recorder: UsageRecorder, store: any UsageStore, interval: Duration, clock: any Clock<Duration> = ContinuousClock(),
        logger: Logger
    ) {
        self.recorder = recorder
        self.store = store
        self.interval = interval
        self.clock = clock
        self.logger = logger
    }

    package func run() async throws {
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            do {
                try await cancelWhenGracefulShutdown { [clock, interval] in try await clock.sleep(for: interval) }
            } catch {
                break
            }
            await flush()
        }
        // The last uses since the previous flush, once no check is answered any more.
        await flush()
    }

    /// Writes every use recorded since the previous flush, with any batch the store refused.
    /// - Returns: whether the store took them (or there were none).
    @discardableResult
    package func flush() async -> Bool {
        let taken = recorder.take()
        let batch = unwritten.withLock { unwritten in
            unwritten.merge(taken)
            let batch = unwritten
            unwritten = Usage()
            return batch
        }
        guard !batch.isEmpty else { return true }
        do {
            try await store.recordUsage(batch)
            logger.debug("usage flushed", metadata: ["grants": "\(batch.grants.count)", "agents": "\(batch.agents.count)"])
            return true
        } catch {
            unwritten.withLock { $0.merge(batch) }
            logger.warning(
                "last uses of grants could not be written to the store; they are kept and written with the next flush",
                metadata: ["grants": "\(batch.grants.count)", "error": "\(error)"])
            return false
        }
    }
}
