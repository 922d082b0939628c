import Foundation
import TetherCore
import TetherStore

/// Changesets decided but held back, so that a caller commits them together with its own
/// write (a SCIM resource and the lifecycle events it causes, in one transaction).
final class ChangesetStage {
    var changesets: [Changeset] = []
    /// The revocation windows as the staged changesets leave them.
    var windows: [Source: RevocationWindow] = [:]
    /// Grants the staged changesets add, less those they revoke: the store's count is
    /// behind by this much until they commit.
    var grantChange = 0
    /// The window plans as the staged changesets leave them, by source.
    var windowPlans: [Source: RecordedPlan] = [:]
}

extension Engine {
    /// Commits `changeset` now (updating the check index), or holds it in `stage` for the
    /// caller to commit.
    func commit(_ changeset: Changeset, stage: ChangesetStage?) async throws {
        if let stage {
            stage.changesets.append(changeset)
            for step in changeset.steps {
                switch step {
                case .grant: stage.grantChange += 1
                case .revoke: stage.grantChange -= 1
                case .quarantine, .release: break
                }
            }
        } else {
            try await commit(changeset)
        }
    }

    /// Decides several events as one unit and hands their changesets to `commit`, which must
    /// write them, together with whatever the caller adds, in one transaction.
    ///
    /// Each event is decided and planned for its identity alone, as ``submit(_:actor:)``
    /// does; events of one batch should concern different identities (a later one is decided
    /// against the store as it was before the batch). Nothing is written if `commit` throws.
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
        let stage = ChangesetStage()
        let now = clock.now()
        var outcomes: [EventOutcome] = []
        for event in events {
            guard !event.id.isEmpty else { throw EngineError(.invalidEvent, "event has no id") }
            if let effectiveAt = event.effectiveAt, effectiveAt > now {
                throw EngineError(.invalidEvent, "event \(event.id) takes effect later; batched events take effect now")
            }
            let event = event.digested()
            if try await isDuplicate(event) {
                outcomes.append(EventOutcome(status: .duplicate))
                continue
            }
            var target: Identity?
            if let key = previousKeys[event.id] {
                target = try await store.identity(source: event.source, externalId: key)
            }
            outcomes.append(try await apply(
                event, actor: actor ?? .source(event.source), receivedAt: now, scheduled: false, target: target,
                stage: stage))
        }
        try await commit(stage.changesets)
        // Committed: the check index and the metrics follow before the caller hears back.
        for changeset in stage.changesets { committed(changeset) }
        return outcomes
    }
}
