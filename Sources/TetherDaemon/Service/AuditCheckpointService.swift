import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import TetherCore
import TetherStore

/// Signs the audit chain head every `audit.checkpointInterval` in which records were added
/// (docs/audit.md): stores the checkpoint beside the chain, logs it as one line for the
/// journal, and wakes the checkpoint target's sender. A last checkpoint is made at a graceful
/// shutdown, so the records of the last, partial interval are covered too.
///
/// The interval is measured on the injected wall clock: a test moves that clock instead of
/// sleeping. `tick` only bounds how long a real sleep lasts before the clock is read again.
package final class AuditCheckpointService: Service, Sendable {
    let store: any AuditCheckpointStore
    let key: AuditSigningKey
    let interval: TimeInterval
    let clock: any WallClock
    let tick: Duration
    let logger: Logger
    /// Called after each checkpoint is stored: the target's sender, when there is one.
    let stored: @Sendable () -> Void
    private let turns = Mutex(0)

    package init(
        store: any AuditCheckpointStore, key: AuditSigningKey, interval: Duration, clock: any WallClock = SystemWallClock(),
        tick: Duration = .seconds(1), logger: Logger, stored: @escaping @Sendable () -> Void = {}
    ) {
        self.store = store
        self.key = key
        let (seconds, attoseconds) = interval.components
        self.interval = Double(seconds) + Double(attoseconds) / 1e18
        self.clock = clock
        self.tick = tick
        self.logger = logger
        self.stored = stored
    }

    package func run() async throws {
        logger.info(
            "audit checkpoints are signed when records were added", metadata: ["interval": "\(DurationText.string(interval))", "key": "\(key.publicKey.id)"])
        var due = clock.now().addingTimeInterval(interval)
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let now = clock.now()
            if now >= due {
                await checkpoint()
                turns.withLock { $0 += 1 }
                // The next interval starts now: a clock that jumped ahead makes one checkpoint, not many.
                due = clock.now().addingTimeInterval(interval)
                continue
            }
            let remaining = Duration.milliseconds(Int64((due.timeIntervalSince(now) * 1000).rounded(.up)))
            try await gracefulShutdownAwareSleep(min(remaining, tick))
        }
        // The services that add records stop before this one: the chain's last head is final.
        if Task.isShuttingDownGracefully { await checkpoint() }
    }

    /// How many intervals have ended so far, each with a look at the chain: a test can tell
    /// the service acted on a move of its clock, whether or not it signed.
    package var intervalsEnded: Int { turns.withLock { $0 } }

    /// Signs and stores the chain head if records were added since the latest checkpoint;
    /// returns the checkpoint made. A store that fails is logged and tried at the next interval.
    @discardableResult
    package func checkpoint() async -> AuditCheckpoint? {
        let key = key
        let time = clock.now()
        do {
            guard let checkpoint = try await store.checkpointAuditHead({ seq, hash in key.checkpoint(seq: seq, hash: hash, time: time) })
            else { return nil }
            logger.notice(
                "audit checkpoint signed",
                metadata: [
                    "seq": "\(checkpoint.seq)", "hash": "\(checkpoint.hash)", "time": "\(checkpoint.time)",
                    "signature": "\(checkpoint.signature)", "key": "\(checkpoint.key)",
                ])
            stored()
            return checkpoint
        } catch {
            logger.error(
                "audit checkpoint could not be stored; the next interval tries again", metadata: ["error": "\(error)"])
            return nil
        }
    }
}
