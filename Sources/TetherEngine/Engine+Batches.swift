import Foundation
import TetherCore
import TetherStore

extension Engine {
    /// Decides several events as one unit and commits their changesets with the SCIM resources
    /// `write` that caused them, in one transaction.
    ///
    /// Each event is decided and planned for its identity alone, as ``submit(_:actor:)``
    /// does, all from one read (``Decider/decide(batch:actor:previousKeys:now:reads:)``);
    /// events of one batch should concern different identities. Nothing is written if the
    /// commit fails. Leavers take effect now: an `effectiveAt` in the future is refused.
    ///
    /// - Parameters:
    ///   - previousKeys: for an event whose source key changed (a SCIM `externalId` edit),
    ///     event id → the key the source knew the person by before; the event then applies
    ///     to the identity linked to that key instead of being correlated afresh.
    ///   - write: the SCIM resources committed with the changesets (possibly none), in one
    ///     transaction; once it is committed, the check index and metrics are updated.
    public func submit(
        _ events: [LifecycleEvent], actor: Actor? = nil, previousKeys: [String: String] = [:], with write: SCIMWrite
    ) async throws -> [EventOutcome] {
        try await lock()
        defer { gate.unlock() }
        let (decider, now) = (decider, clock.now())
        let (outcomes, changesets) = try await store.inspect { reads in
            try decider.decide(batch: events, actor: actor, previousKeys: previousKeys, now: now, reads: reads)
        }
        let receipt = try await store.commit(write, with: changesets)
        // Committed: the check index and the metrics follow before the caller hears back.
        committed(changesets, receipt: receipt)
        return outcomes
    }
}
