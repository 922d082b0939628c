import Foundation
import TetherCore
import TetherStore

/// A complete read of a directory's users, every page of it successful.
public struct DirectorySnapshot: Sendable {
    public var source: Source
    public var users: [IdentityFacts]
    /// The resume point this read brings the store up to (an RFC 4533 cookie), if any.
    public var cookie: Data?
    /// `syncrepl` or `poll`.
    public var mode: String

    public init(source: Source, users: [IdentityFacts], cookie: Data? = nil, mode: String) {
        self.source = source
        self.users = users
        self.cookie = cookie
        self.mode = mode
    }
}

extension Engine {
    /// Applies a full directory read: every user upserted, every identity this source knew
    /// but no longer lists terminated, then one full reconciliation through the safety gates.
    ///
    /// When the plan is held, nothing is applied — neither identities nor grants — and the
    /// identity changes wait with the held plan for `tether approve`.
    @discardableResult
    public func applySnapshot(_ snapshot: DirectorySnapshot, actor: Actor? = nil) async throws -> ReconcileOutcome {
        await gate.lock()
        defer { gate.unlock() }
        let actor = actor ?? .source(snapshot.source)
        let now = clock.now()
        // A read is long work before its one commit: a daemon asked to stop (its source's task
        // cancelled) drops it between the steps, with nothing written, and reads again at start.
        let changes = try await identityChanges(from: snapshot, now: now)
        try Task.checkCancellation()
        var (plan, view) = try await fullPlan(
            origin: .sourceScan(users: snapshot.users.count), overlay: changes.map(\.identity))
        try Task.checkCancellation()
        // A complete read's revocations count in its source's window like streamed ones.
        let decider = decider
        var window: RevocationWindow?
        if plan.held == nil, plan.revocations > 0 {
            let (source, revocations) = (snapshot.source, plan.revocations)
            let check = try await store.inspect { reads in
                try decider.windowCheck(
                    revocations: revocations, source: source, now: now,
                    waiting: try decider.heldWindowPlan(source, reads: reads), reads: reads)
            }
            switch check {
            case .within(let counted): window = counted
            case .exceeded(let reason, _, _): plan.held = reason
            }
        }

        var changeset = Changeset(time: now)
        var state = try await store.sourceState(snapshot.source) ?? SourceState(source: snapshot.source, health: .ok)
        state.health = .ok
        state.mode = snapshot.mode
        state.lastSuccess = now
        state.lastError = nil
        state.lastScanUsers = snapshot.users.count
        if plan.held != nil {
            if try await store.plan(id: plan.id)?.status == .held {
                try await store.commitSupersession(
                    Supersession(scope: plan.scope, actor: actor, includingHeldReads: true, keeping: plan.id), time: now)
                return .held(plan)
            }
            changeset.sourceState = state
            changeset.pendingIdentities = changes.map(\.identity)
            decider.add(plan, agentStates: [], to: &changeset, actor: actor, event: nil, afterRead: true)
            try await commit(changeset)
            return .held(plan)
        }
        if let cookie = snapshot.cookie { state.cookie = cookie }
        changeset.sourceState = state
        if let window { decider.count(plan.revocations, in: window, source: snapshot.source, changeset: &changeset) }
        for change in changes {
            changeset.identities.append(change.identity)
            if let entry = AuditEntry.identityTransition(
                change.transition, of: change.identity, source: snapshot.source, reason: change.reason, event: nil,
                actor: actor, time: now)
            {
                changeset.audit.append(entry)
            }
        }
        decider.add(plan, agentStates: view.changed, to: &changeset, actor: actor, event: nil, afterRead: true)
        try await commit(changeset)
        return .applied(plan)
    }

    /// Applies one entry's change (a syncrepl update or a poll hit), committing `cookie` with it.
    @discardableResult
    public func applyDirectoryEntry(
        _ facts: IdentityFacts, source: Source, cookie: Data? = nil, mode: String
    ) async throws -> EventOutcome {
        await gate.lock()
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
        await gate.lock()
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
        await gate.lock()
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
        await gate.lock()
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

    struct IdentityChange {
        var identity: Identity
        var transition: IdentityTransition
        var reason: String
    }

    /// The identities a snapshot changes, decided in memory against everything stored.
    func identityChanges(from snapshot: DirectorySnapshot, now: Date) async throws -> [IdentityChange] {
        let source = snapshot.source
        let lifecycle = configuration.lifecycle
        var identities: [IdentityID: Identity] = [:]
        var linked: [String: IdentityID] = [:]
        var byKey: [CorrelationKey: [String: IdentityID]] = [:]
        func index(_ identity: Identity) {
            identities[identity.id] = identity
            if let key = identity.sources[source]?.externalId { linked[key] = identity.id }
            for key in configuration.correlator.keys {
                if let value = Correlator.value(key, of: identity) { byKey[key, default: [:]][value] = identity.id }
            }
        }
        for identity in try await store.identities(status: nil) { index(identity) }
        let original = identities

        var seen: Set<IdentityID> = []
        var reasons: [IdentityID: String] = [:]
        let ceiling = Timestamp.versionCeiling(now: now, tolerance: configuration.versionTolerance)
        for listed in snapshot.users {
            let facts = decider.bounded(listed, now: now)
            var candidateIDs: [IdentityID] = []
            if let key = facts.externalId, let id = linked[key] { candidateIDs.append(id) }
            for key in configuration.correlator.keys {
                if let value = Correlator.value(key, of: facts), let id = byKey[key]?[value] { candidateIDs.append(id) }
            }
            let existing = configuration.correlator.match(
                facts, from: source, among: candidateIDs.compactMap { identities[$0] })
            if let existing, existing.sources[source] == facts {
                seen.insert(existing.id)
                continue
            }
            let event = LifecycleEvent(
                id: "\(source.rawValue):\(facts.externalId ?? facts.userName ?? "?"):\(facts.version)", source: source,
                kind: existing == nil ? .joiner : .mover, occurredAt: now, facts: facts, isExplicitLeaver: false)
            guard
                case .apply(let identity, _, _) = lifecycle.decide(
                    event, existing: existing, newID: Decider.newIdentityID(for: event), ceiling: ceiling)
            else {
                // Stale, but listed: present in the directory, so never a leaver.
                if let existing { seen.insert(existing.id) }
                continue
            }
            seen.insert(identity.id)
            reasons[identity.id] = "\(source.rawValue) \(existing == nil ? "joiner" : "mover")"
            index(identity)
        }
        // Known to this source, absent from a complete read: a leaver.
        for (id, identity) in identities where !seen.contains(id) {
            guard var facts = identity.sources[source], facts.status != .terminated else { continue }
            facts.status = .terminated
            facts.version = max(facts.version, Timestamp.version(now))
            let event = LifecycleEvent(
                id: "\(source.rawValue):\(facts.externalId ?? id):absent", source: source, kind: .leaver,
                occurredAt: now, facts: facts, isExplicitLeaver: false)
            guard case .apply(let next, _, _) = lifecycle.decide(event, existing: identity, newID: id, ceiling: ceiling) else {
                continue
            }
            reasons[id] = "\(source.rawValue) entry no longer present"
            index(next)
        }
        // Managers may be listed after their reports: resolve them once everyone is known.
        var changes: [IdentityChange] = []
        for (id, var identity) in identities {
            lifecycle.merge(into: &identity) { managerSource, key in
                managerSource == source ? linked[key] : nil
            }
            if identity.manager == nil, let before = original[id]?.manager,
                identity.sources.keys.contains(where: { $0 != source })
            {
                identity.manager = before
            }
            let before = original[id]
            guard identity != before else { continue }
            let transition = before.map { lifecycle.transition(from: $0, to: identity) } ?? Self.arrival(identity)
            changes.append(IdentityChange(identity: identity, transition: transition, reason: reasons[id] ?? "\(source.rawValue) mover"))
        }
        return changes.sorted { $0.identity.id < $1.identity.id }
    }

    private static func arrival(_ identity: Identity) -> IdentityTransition {
        switch identity.status {
        case .active: .joined
        case .suspended: .suspended
        case .terminated: .terminated
        }
    }
}
