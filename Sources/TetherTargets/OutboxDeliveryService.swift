import Foundation
import Logging
import Metrics
import ServiceLifecycle
import Synchronization
import TetherConfig
import TetherCore
import TetherStore

/// Delivers one target's outbox (SPEC §6), at least once, revocations before grants, retried
/// with backoff while the target fails. One service per target: a target that hangs or is
/// down delays nobody else.
///
/// Each pass drops the grant rows a later revocation made moot, then sends what is due in
/// the store's delivery order. A row leaves the outbox only once the target acknowledged it.
/// When the target fails as a whole the pass stops and the target rests until the retry is
/// due (or its `Retry-After`); a change the target refuses waits for its own retry while the
/// others go on. The service wakes when a commit adds outbox rows, and polls as a safety net.
public final class OutboxDeliveryService: Service, Sendable {
    /// The target this service feeds.
    public let target: any GrantTarget
    let store: any OutboxQueue
    let retry: RetryPolicy
    let batchSize: Int
    let pollInterval: Duration
    let clock: any WallClock
    let logger: Logger
    let metrics: Metrics
    private let doorbell = Doorbell()
    private let state = Mutex(DeliveryState())

    struct DeliveryState {
        /// The target failed as a whole: nothing is sent before this time.
        var restingUntil: Date?
        var unavailableSince: Date?
        /// Whole-target failures since the last delivery: the rest grows with them.
        var failuresInARow = 0
        /// Passes over the outbox so far.
        var passes = 0
    }

    struct Metrics: Sendable {
        let delivered: Counter
        let failures: Counter
        let superseded: Counter

        init(target: String, factory: (any MetricsFactory)?) {
            let dimensions = [("target", target)]
            if let factory {
                delivered = Counter(label: "tether_outbox_delivered_total", dimensions: dimensions, factory: factory)
                failures = Counter(label: "tether_outbox_failures_total", dimensions: dimensions, factory: factory)
                superseded = Counter(label: "tether_outbox_superseded_total", dimensions: dimensions, factory: factory)
            } else {
                delivered = Counter(label: "tether_outbox_delivered_total", dimensions: dimensions)
                failures = Counter(label: "tether_outbox_failures_total", dimensions: dimensions)
                superseded = Counter(label: "tether_outbox_superseded_total", dimensions: dimensions)
            }
        }
    }

    /// - Parameters:
    ///   - target: where the changes go; the service owns it and shuts it down when it stops.
    ///   - retry: backoff after failures.
    ///   - batchSize: rows read per store query.
    ///   - pollInterval: the longest sleep without a wake-up from the store; a safety net only.
    ///   - clock: the time retries are scheduled in.
    ///   - metricsFactory: where counters go; nil uses the global metrics system.
    public init(
        target: any GrantTarget, store: any OutboxQueue, retry: RetryPolicy = RetryPolicy(), batchSize: Int = 200,
        pollInterval: Duration = .seconds(30), clock: any WallClock = SystemWallClock(), logger: Logger,
        metricsFactory: (any MetricsFactory)? = nil
    ) {
        self.target = target
        self.store = store
        self.retry = retry
        self.batchSize = max(1, batchSize)
        self.pollInterval = pollInterval
        self.clock = clock
        var logger = logger
        logger[metadataKey: "target"] = "\(target.id)"
        self.logger = logger
        metrics = Metrics(target: target.id, factory: metricsFactory)
    }

    /// One deliverer per configured target, each with its own connection; secrets are read from
    /// the targets' `secretFile`s now. A target's `maxBackoff` caps `retry`'s backoff for it.
    /// - Throws: ``TargetError`` when a target's URL or secret cannot be used.
    public static func services(
        for configurations: [TargetConfiguration], store: any OutboxQueue, retry: RetryPolicy = RetryPolicy(),
        logger: Logger, metricsFactory: (any MetricsFactory)? = nil
    ) throws -> [OutboxDeliveryService] {
        try configurations.map { configuration in
            OutboxDeliveryService(
                target: try HTTPGrantTarget(configuration: configuration), store: store,
                retry: retry.capped(at: configuration.maxBackoff), logger: logger, metricsFactory: metricsFactory)
        }
    }

    /// Runs until graceful shutdown or cancellation; the change in flight finishes first.
    public func run() async throws {
        let insertions = store.outboxInsertions()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [doorbell] in
                for await _ in insertions { doorbell.ring() }
            }
            await withGracefulShutdownHandler {
                await self.loop()
            } onGracefulShutdown: { [doorbell] in
                doorbell.ring()
            }
            group.cancelAll()
        }
        await target.shutdown()
    }

    /// Passes over the outbox so far: a test can tell the service went idle.
    var passes: Int { state.withLock { $0.passes } }

    /// Wakes the service now, as a commit that adds outbox rows does.
    public func wake() { doorbell.ring() }

    private func loop() async {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            var wakeAt: Date?
            do {
                wakeAt = try await deliverDue()
            } catch is CancellationError {
                return
            } catch {
                // The store failed (locked, disk full): the rows are still there; try again.
                logger.error("outbox delivery pass failed", metadata: ["error": "\(error)"])
                wakeAt = clock.now().addingTimeInterval(RetryPolicy.seconds(retry.initialDelay))
            }
            state.withLock { $0.passes += 1 }
            if Task.isCancelled || Task.isShuttingDownGracefully { return }
            var wait = pollInterval
            if let wakeAt {
                let seconds = max(0, wakeAt.timeIntervalSince(clock.now()))
                wait = min(wait, .milliseconds(Int64((seconds * 1000).rounded(.up))))
            }
            if wait > .zero { await doorbell.wait(atMost: wait) }
        }
    }

    /// Sends everything due now. Returns when something next falls due (a retry, or the end
    /// of the target's rest), nil when nothing waits.
    func deliverDue() async throws -> Date? {
        while true {
            if Task.isCancelled || Task.isShuttingDownGracefully { return nil }
            let now = clock.now()
            if let resting = state.withLock({ $0.restingUntil }), resting > now { return resting }
            // The query below sees every row committed before this point.
            doorbell.answer()
            let superseded = try await store.dropSupersededOutbox(target: target.id)
            if !superseded.isEmpty {
                metrics.superseded.increment(by: superseded.count)
                logger.debug("grant changes superseded by a later revocation", metadata: ["outbox.ids": "\(superseded)"])
            }
            let rows = try await store.pendingOutbox(target: target.id, dueBy: now, limit: batchSize)
            guard !rows.isEmpty else { return try await store.nextOutboxAttempt(target: target.id, after: now) }
            var delivered = 0
            var refused = 0
            for row in rows {
                if Task.isCancelled || Task.isShuttingDownGracefully { return nil }
                // New rows may hold revocations: they go before the grants still in this batch.
                if delivered > 0, row.operation == .put, doorbell.isRung { break }
                let outcome = await target.deliver(row)
                switch outcome {
                case .delivered:
                    try await store.markDelivered(ids: [row.id])
                    metrics.delivered.increment()
                    delivered += 1
                    recovered()
                case .refused(let reason, let retryAfter):
                    _ = try await failed(row, reason: reason, retryAfter: retryAfter, wholeTarget: false)
                    refused += 1
                case .unavailable(let reason, let retryAfter):
                    return try await failed(row, reason: reason, retryAfter: retryAfter, wholeTarget: true)
                }
            }
            // Refused rows now wait for their retry: the next query finds the rows behind them.
            if delivered == 0 && refused == 0 {
                return try await store.nextOutboxAttempt(target: target.id, after: clock.now())
            }
        }
    }

    /// Keeps the row with one more attempt and its retry time; a target that failed as a whole rests until then.
    private func failed(_ row: OutboxEntry, reason: String, retryAfter: Duration?, wholeTarget: Bool) async throws -> Date {
        let attempts = row.attempts + 1
        let inARow = wholeTarget ? state.withLock { state in
            state.failuresInARow += 1
            return state.failuresInARow
        } : 0
        let delay = retry.delay(afterAttempt: max(attempts, inARow), retryAfter: retryAfter)
        let now = clock.now()
        let next = now.addingTimeInterval(RetryPolicy.seconds(delay))
        try await store.markFailed(id: row.id, error: reason, at: now, nextAttemptAt: next)
        metrics.failures.increment()
        var metadata: Logger.Metadata = [
            "outbox.id": "\(row.id)", "grant.id": "\(row.grantID)", "operation": "\(row.operation.rawValue)",
            "attempts": "\(attempts)", "error": "\(reason)", "retryIn": "\(delay)",
        ]
        if let retryAfter { metadata["retryAfter"] = "\(retryAfter)" }
        if wholeTarget {
            let first = state.withLock { state -> Bool in
                state.restingUntil = next
                defer { state.unavailableSince = state.unavailableSince ?? now }
                return state.unavailableSince == nil
            }
            // Once when the target goes down, then quietly while it stays down.
            if first {
                logger.warning("target unavailable; changes wait in the outbox", metadata: metadata)
            } else {
                logger.debug("target still unavailable", metadata: metadata)
            }
        } else {
            logger.warning("target refused a change; it will be retried", metadata: metadata)
        }
        return next
    }

    private func recovered() {
        let since = state.withLock { state -> Date? in
            defer {
                state.unavailableSince = nil
                state.restingUntil = nil
                state.failuresInARow = 0
            }
            return state.unavailableSince
        }
        if let since {
            logger.notice("target available again", metadata: ["downSeconds": "\(Int(clock.now().timeIntervalSince(since)))"])
        }
    }
}
