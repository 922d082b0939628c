import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import TetherConfig
import TetherCore
import TetherStore

/// Sends each stored audit checkpoint to `audit.checkpointTarget` (docs/audit.md): `POST {url}`
/// with the checkpoint's JSON line as the body, `Idempotency-Key: checkpoint:<seq>` and
/// `Tether-Signature`, oldest first, at least once. What the target acknowledged is recorded
/// in the store, so a restart resumes where it stopped; while the target fails, the checkpoints
/// wait and are retried with backoff. It runs beside the daemon's other work and never holds
/// it up: signing and storing a checkpoint does not wait for the target.
public final class CheckpointPublisher: Service, Sendable {
    let target: HTTPGrantTarget
    let store: any AuditCheckpointStore
    let retry: RetryPolicy
    let pollInterval: Duration
    let logger: Logger
    private let doorbell = Doorbell()
    private let failures = Mutex(0)

    /// - Parameters:
    ///   - configuration: the target; its secret is read from `secretFile` now.
    ///   - pollInterval: the longest sleep without a wake-up; a safety net only.
    /// - Throws: ``TargetError`` when the URL or secret cannot be used.
    public init(
        configuration: TargetConfiguration, store: any AuditCheckpointStore, retry: RetryPolicy = RetryPolicy(),
        pollInterval: Duration = .seconds(60), logger: Logger
    ) throws {
        target = try HTTPGrantTarget(configuration: configuration)
        self.store = store
        self.retry = retry.capped(at: configuration.maxBackoff)
        self.pollInterval = pollInterval
        var logger = logger
        logger[metadataKey: "target"] = "\(configuration.id)"
        self.logger = logger
    }

    /// Sends what is waiting now, as a new checkpoint does.
    public func wake() { doorbell.ring() }

    public func run() async throws {
        // A graceful shutdown cancels a request in flight (a hanging target must not hold up
        // the stop): its checkpoint was not acknowledged, so it waits in the store for the next start.
        _ = try? await cancelWhenGracefulShutdown { await self.loop() }
        await target.shutdown()
    }

    private func loop() async {
        while !Task.isCancelled {
            let wait = await publishWaiting()
            if Task.isCancelled { return }
            await doorbell.wait(atMost: wait ?? pollInterval)
        }
    }

    /// Sends every checkpoint the target has not acknowledged; returns how long to rest after
    /// a failure, nil when all were sent.
    func publishWaiting() async -> Duration? {
        do {
            while !Task.isCancelled {
                doorbell.answer()
                let delivered = try await store.checkpointDelivered(target: target.id)
                let waiting = try await store.auditCheckpoints(after: delivered, limit: 100)
                guard !waiting.isEmpty else { return nil }
                for checkpoint in waiting {
                    let outcome = await target.publish(checkpoint)
                    if Task.isCancelled { return nil }
                    switch outcome {
                    case .delivered:
                        try await store.markCheckpointDelivered(target: target.id, seq: checkpoint.seq)
                        let downFor = failures.withLock { count in
                            defer { count = 0 }
                            return count
                        }
                        if downFor > 0 {
                            logger.notice("checkpoint target available again", metadata: ["failedAttempts": "\(downFor)"])
                        }
                    case .unavailable(let reason, let retryAfter), .refused(let reason, let retryAfter):
                        let attempts = failures.withLock { count in
                            count += 1
                            return count
                        }
                        let delay = retry.delay(afterAttempt: attempts, retryAfter: retryAfter)
                        let metadata: Logger.Metadata = [
                            "seq": "\(checkpoint.seq)", "error": "\(reason)", "attempts": "\(attempts)", "retryIn": "\(delay)",
                        ]
                        // Once when the target goes down, then quietly while it stays down.
                        if attempts == 1 {
                            logger.warning("checkpoint target unavailable; checkpoints wait in the store and are retried", metadata: metadata)
                        } else {
                            logger.debug("checkpoint target still unavailable", metadata: metadata)
                        }
                        return delay
                    }
                }
            }
        } catch is CancellationError {
            return nil
        } catch {
            // The store failed (locked, disk full): the checkpoints are still there; try again.
            logger.error("sending audit checkpoints failed", metadata: ["error": "\(error)"])
            return retry.initialDelay
        }
        return nil
    }
}

extension HTTPGrantTarget {
    /// `POST {url}` with `checkpoint` as its JSON line.
    func publish(_ checkpoint: AuditCheckpoint) async -> DeliveryOutcome {
        await post(Array(checkpoint.line.utf8), idempotencyKey: "checkpoint:\(checkpoint.seq)")
    }

    /// `POST {url}` with a JSON `body`, signed, under `key`: how a checkpoint target and
    /// `reviews.notify` receive what Tether sends them.
    func post(_ body: [UInt8], idempotencyKey key: String) async -> DeliveryOutcome {
        let path = endpoint.collectionTarget
        let request = HTTPRequest(
            method: .POST, target: path,
            headers: [
                ("User-Agent", "tether"), ("Accept", "application/json"), ("Content-Type", "application/json"),
                ("Idempotency-Key", key),
                ("Tether-Signature", signature.header(method: "POST", target: path, idempotencyKey: key, body: body, at: clock.now())),
            ],
            body: body)
        let response: HTTPResponse
        do {
            response = try await exchange(request)
        } catch {
            return .unavailable(reason: "POST \(path): \(error)", retryAfter: nil)
        }
        if (200..<300).contains(response.status) { return .delivered(status: response.status) }
        let retryAfter = response.headers.first(name: "Retry-After").flatMap { RetryAfter.parse($0, now: clock.now()) }
        return .unavailable(reason: "POST \(path): HTTP \(response.status)" + Self.excerpt(response.body), retryAfter: retryAfter)
    }
}
