import Foundation
import TetherCore
import TetherStore

extension Engine {
    /// Applies a full directory read: every user upserted, every identity this source knew
    /// but no longer lists terminated, then one full reconciliation through the safety gates,
    /// all decided from one read (``Decider/decide(_:actor:now:reads:cancelled:)``).
    ///
    /// When the plan is held, nothing is applied — neither identities nor grants — and the
    /// identity changes wait with the held plan for `tether approve`. A read is long work
    /// before its one commit: a daemon asked to stop (its source's task cancelled) drops it,
    /// with nothing written, and reads again at start.
    @discardableResult
    public func applySnapshot(_ snapshot: DirectorySnapshot, actor: Actor? = nil) async throws -> ReconcileOutcome {
        try await lock()
        defer { gate.unlock() }
        let (decider, actor, now) = (decider, actor ?? .source(snapshot.source), clock.now())
        let decision = try await inspectCancellably { reads, cancelled in
            try decider.decide(snapshot, actor: actor, now: now, reads: reads, cancelled: cancelled)
        }
        try Task.checkCancellation()
        if let changeset = decision.changeset { try await commit(changeset) }
        return decision.outcome
    }

    /// Applies one entry's change (a syncrepl update or a poll hit), committing `cookie` with it.
    @discardableResult
    public func applyDirectoryEntry(
        _ facts: IdentityFacts, source: Source, cookie: Data? = nil, mode: String
    ) async throws -> EventOutcome {
        try await lock()
        defer { gate.unlock() }
        let key = facts.externalId ?? facts.userName ?? "?"
        let now = clock.now()
        let event = LifecycleEvent(
            id: "\(source.rawValue):\(key):\(facts.version)", source: source, kind: .mover,
            occurredAt: now, facts: facts, isExplicitLeaver: false)
        return try await decideAndCommit(EventWork(
            event: event, actor: .source(source), receivedAt: now, now: now, checkDuplicate: true,
            advance: SourceAdvance(cookie: cookie, mode: mode)))
    }

    /// Applies the deletion of one directory entry: the identity it was becomes a leaver.
    @discardableResult
    public func applyDirectoryDeletion(
        externalId: String, source: Source, cookie: Data? = nil, mode: String
    ) async throws -> EventOutcome {
        try await lock()
        defer { gate.unlock() }
        let now = clock.now()
        let decider = decider
        let advance = SourceAdvance(cookie: cookie, mode: mode)
        let decision = try await store.inspect { reads in
            guard let identity = try reads.identity(source: source, externalId: externalId),
                var facts = identity.sources[source]
            else {
                // Not known (any more): only the resume point moves on.
                guard cookie != nil else { return EventDecision(outcome: EventOutcome(status: .duplicate)) }
                var changeset = Changeset(time: now)
                changeset.sourceState = try decider.advancedState(source, advance, reads: reads, now: now)
                return EventDecision(outcome: EventOutcome(status: .duplicate), changeset: changeset)
            }
            facts.status = .terminated
            facts.version = max(facts.version, Timestamp.version(now))
            let event = LifecycleEvent(
                id: "\(source.rawValue):\(externalId):deleted:\(facts.version)", source: source, kind: .leaver,
                occurredAt: now, facts: facts, isExplicitLeaver: false)
            return try decider.decide(
                EventWork(
                    event: event, actor: .source(source), receivedAt: now, now: now, target: identity, advance: advance),
                reads: reads)
        }
        if let changeset = decision.changeset { try await commit(changeset) }
        return decision.outcome
    }

    /// Records a source's health; a change of health is audited (`source.degraded` / `source.recovered`).
    ///
    /// - Parameter announce: audit `source.degraded` even when the source already is
    ///   degraded: the reason is one the operator must see (a resume point dropped).
    public func recordSourceHealth(_ source: Source, error: String?, mode: String?, announce: Bool = false) async throws {
        try await lock()
        defer { gate.unlock() }
        let now = clock.now()
        var state = try await store.sourceState(source) ?? SourceState(source: source, health: .ok)
        let wasDegraded = state.health == .degraded
        state.health = error == nil ? .ok : .degraded
        state.lastError = error
        if let mode { state.mode = mode }
        if error == nil { state.lastSuccess = now }
        var changeset = Changeset(time: now)
        changeset.sourceState = state
        if let error, !wasDegraded || announce {
            changeset.audit.append(AuditEntry(
                action: .sourceDegraded, actor: .source(source), time: now,
                fields: ["source": source.rawValue, "reason": error]))
        } else if error == nil, wasDegraded {
            changeset.audit.append(AuditEntry(
                action: .sourceRecovered, actor: .source(source), time: now,
                fields: ["source": source.rawValue, "reason": "source answers again"]))
        }
        try await commit(changeset)
    }

    /// Stores a resume point that covers changes which altered nothing Tether keeps (an
    /// attribute no mapping reads, a group edit that moved nobody), so a restart does not
    /// replay them.
    public func recordSourceCookie(_ cookie: Data, source: Source, mode: String) async throws {
        try await saveCookie(cookie, source: source, mode: mode)
    }

    /// Records how many entries of `source` cannot be read or mapped (`tether status`,
    /// `/metrics`); a count that did not change writes nothing.
    public func recordUnreadableEntries(_ count: Int, source: Source) async throws {
        try await lock()
        defer { gate.unlock() }
        var state = try await store.sourceState(source) ?? SourceState(source: source, health: .ok)
        guard state.unreadableEntries != count else { return }
        state.unreadableEntries = count
        var changeset = Changeset(time: clock.now())
        changeset.sourceState = state
        try await commit(changeset)
    }

    /// The resume point stored for `source`.
    public func cookie(for source: Source) async throws -> Data? {
        try await store.sourceState(source)?.cookie
    }

    private func saveCookie(_ cookie: Data, source: Source, mode: String) async throws {
        let (decider, now) = (decider, clock.now())
        let state = try await store.inspect { reads in
            try decider.advancedState(source, SourceAdvance(cookie: cookie, mode: mode), reads: reads, now: now)
        }
        var changeset = Changeset(time: now)
        changeset.sourceState = state
        try await commit(changeset)
    }
}
