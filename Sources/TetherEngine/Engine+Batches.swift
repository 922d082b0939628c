import Foundation
import TetherCore
import TetherStore

extension Engine {
    /// Decides several events as one unit and commits their changesets with the SCIM resources
    /// `write` that caused them, in one transaction.
    ///
    /// Each event is decided and planned for its identity alone, as ``submit(_:actor:)``
    /// does; events of one batch should concern different identities (a later one is decided
    /// against the store as it was before the batch, and against the revocation windows and
    /// window plans as the earlier ones leave them). Nothing is written if the commit fails.
    /// Leavers take effect now: an `effectiveAt` in the future is refused.
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
        try await store.commit(write, with: changesets)
        // Committed: the check index and the metrics follow before the caller hears back.
        for changeset in changesets { committed(changeset) }
        return outcomes
    }
}
