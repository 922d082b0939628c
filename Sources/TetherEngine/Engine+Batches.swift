import Foundation
import TetherCore
import TetherStore

extension Engine {
    /// Decides several events as one unit and hands their changesets to `commit`, which must
    /// write them, together with whatever the caller adds, in one transaction.
    ///
    /// Each event is decided and planned for its identity alone, as ``submit(_:actor:)``
    /// does; events of one batch should concern different identities (a later one is decided
    /// against the store as it was before the batch, and against the revocation windows and
    /// window plans as the earlier ones leave them). Nothing is written if `commit` throws.
    /// Leavers take effect now: an `effectiveAt` in the future is refused.
    ///
    /// - Parameters:
    ///   - previousKeys: for an event whose source key changed (a SCIM `externalId` edit),
    ///     event id → the key the source knew the person by before; the event then applies
    ///     to the identity linked to that key instead of being correlated afresh.
    ///   - commit: writes the changesets (possibly none) atomically, e.g.
    ///     `SCIMStore.commit(_:with:)`; once it returns, the check index and metrics are updated.
    public func submit(
        _ events: [LifecycleEvent], actor: Actor? = nil, previousKeys: [String: String] = [:],
        committing commit: @Sendable ([Changeset]) async throws -> Void
    ) async throws -> [EventOutcome] {
        await gate.lock()
        defer { gate.unlock() }
        let now = clock.now()
        for event in events {
            guard !event.id.isEmpty else { throw EngineError(.invalidEvent, "event has no id") }
            if let effectiveAt = event.effectiveAt, effectiveAt > now {
                throw EngineError(.invalidEvent, "event \(event.id) takes effect later; batched events take effect now")
            }
        }
        let decider = decider
        var staged = Staged()
        var changesets: [Changeset] = []
        var outcomes: [EventOutcome] = []
        for event in events {
            let work = EventWork(
                event: event.digested(), actor: actor ?? .source(event.source), receivedAt: now, now: now,
                previousKey: previousKeys[event.id], checkDuplicate: true, staged: staged)
            let decision = try await store.inspect { reads in try decider.decide(work, reads: reads) }
            if let changeset = decision.changeset {
                staged.absorb(changeset)
                changesets.append(changeset)
            }
            outcomes.append(decision.outcome)
        }
        try await commit(changesets)
        // Committed: the check index and the metrics follow before the caller hears back.
        for changeset in changesets { committed(changeset) }
        return outcomes
    }
}
