import Foundation

extension Decider {
    /// What a complete directory read decides: every user upserted, every identity this
    /// source knew but no longer lists terminated, then one full reconciliation through the
    /// safety gates. Its revocations count in the source's window like streamed ones.
    ///
    /// When the plan is held, nothing is applied — neither identities nor grants — and the
    /// identity changes wait with the held plan for `tether approve`.
    /// - Parameter cancelled: whether the read was called off (a daemon asked to stop): it is
    ///   dropped with nothing written, and read again at start.
    package func decide(
        _ snapshot: DirectorySnapshot, actor: Actor, now: Date, reads: any DecisionReads,
        cancelled: @escaping @Sendable () -> Bool = { false }
    ) throws -> ReconcileDecision {
        let changes = try identityChanges(from: snapshot, now: now, reads: reads)
        if cancelled() { throw CancellationError() }
        var (plan, view) = try fullPlan(
            origin: .sourceScan(users: snapshot.users.count), overlay: changes.map(\.identity), reads: reads,
            cancelled: cancelled)
        if cancelled() { throw CancellationError() }
        var window: RevocationWindow?
        if plan.held == nil, plan.revocations > 0 {
            let check = try windowCheck(
                revocations: plan.revocations, source: snapshot.source, now: now,
                waiting: try heldWindowPlan(snapshot.source, reads: reads), reads: reads)
            switch check {
            case .within(let counted): window = counted
            case .exceeded(let reason, _, _): plan.held = reason
            }
        }

        var changeset = Changeset(time: now)
        var state = try reads.sourceState(snapshot.source) ?? SourceState(source: snapshot.source, health: .ok)
        state.health = .ok
        state.mode = snapshot.mode
        state.lastSuccess = now
        state.lastError = nil
        state.lastScanUsers = snapshot.users.count
        if plan.held != nil {
            if try reads.plan(id: plan.id)?.status == .held {
                let supersession = Supersession(scope: plan.scope, actor: actor, includingHeldReads: true, keeping: plan.id)
                return ReconcileDecision(outcome: .held(plan), changeset: try self.changeset(for: supersession, now: now, reads: reads))
            }
            changeset.sourceState = state
            changeset.pendingIdentities = changes.map(\.identity)
            add(plan, agentStates: [], to: &changeset, actor: actor, event: nil, afterRead: true)
            return ReconcileDecision(outcome: .held(plan), changeset: changeset)
        }
        if let cookie = snapshot.cookie { state.cookie = cookie }
        changeset.sourceState = state
        if let window { count(plan.revocations, in: window, source: snapshot.source, changeset: &changeset) }
        for change in changes {
            changeset.identities.append(change.identity)
            if let entry = AuditEntry.identityTransition(
                change.transition, of: change.identity, source: snapshot.source, reason: change.reason, event: nil,
                actor: actor, time: now)
            {
                changeset.audit.append(entry)
            }
        }
        add(plan, agentStates: view.changed, to: &changeset, actor: actor, event: nil, afterRead: true)
        return ReconcileDecision(outcome: .applied(plan), changeset: changeset)
    }

    /// One identity a complete read changes, with its transition and why.
    package struct IdentityChange: Sendable {
        package var identity: Identity
        package var transition: IdentityTransition
        package var reason: String
    }

    /// The identities a snapshot changes, decided in memory against every stored identity.
    package func identityChanges(from snapshot: DirectorySnapshot, now: Date, reads: any DecisionReads) throws -> [IdentityChange] {
        let source = snapshot.source
        let lifecycle = configuration.lifecycle
        let correlator = configuration.correlator
        // What the store holds, and apart from it what the read changes: a directory of a
        // hundred thousand people is held once, not copied when the first of them changes.
        var stored: [IdentityID: Identity] = [:]
        var updated: [IdentityID: Identity] = [:]
        var linked: [String: IdentityID] = [:]
        var byKey: [CorrelationKey: [String: IdentityID]] = [:]
        func index(_ identity: Identity) {
            if let key = identity.sources[source]?.externalId { linked[key] = identity.id }
            for key in correlator.keys {
                if let value = Correlator.value(key, of: identity) { byKey[key, default: [:]][value] = identity.id }
            }
        }
        func current(_ id: IdentityID) -> Identity? { updated[id] ?? stored[id] }
        do {
            let all = try reads.identities(status: nil)
            stored.reserveCapacity(all.count)
            for identity in all {
                stored[identity.id] = identity
                index(identity)
            }
        }

        var seen: Set<IdentityID> = []
        var reasons: [IdentityID: String] = [:]
        let ceiling = Timestamp.versionCeiling(now: now, tolerance: configuration.versionTolerance)
        for listed in snapshot.users {
            let facts = bounded(listed, now: now)
            var candidateIDs: [IdentityID] = []
            if let key = facts.externalId, let id = linked[key] { candidateIDs.append(id) }
            for key in correlator.keys {
                if let value = Correlator.value(key, of: facts), let id = byKey[key]?[value] { candidateIDs.append(id) }
            }
            let existing = correlator.match(facts, from: source, among: candidateIDs.compactMap(current))
            if let existing, existing.sources[source] == facts {
                seen.insert(existing.id)
                continue
            }
            let event = LifecycleEvent(
                id: "\(source.rawValue):\(facts.externalId ?? facts.userName ?? "?"):\(facts.version)", source: source,
                kind: existing == nil ? .joiner : .mover, occurredAt: now, facts: facts, isExplicitLeaver: false)
            guard
                case .apply(let identity, _, _) = lifecycle.decide(
                    event, existing: existing, newID: Self.newIdentityID(for: event), ceiling: ceiling)
            else {
                // Stale, but listed: present in the directory, so never a leaver.
                if let existing { seen.insert(existing.id) }
                continue
            }
            seen.insert(identity.id)
            reasons[identity.id] = "\(source.rawValue) \(existing == nil ? "joiner" : "mover")"
            updated[identity.id] = identity
            index(identity)
        }
        // Known to this source, absent from a complete read: a leaver. (Everyone the read
        // changed was seen, so what the store holds is current for the others.)
        for (id, identity) in stored where !seen.contains(id) {
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
            updated[id] = next
            index(next)
        }
        // Managers may be listed after their reports: resolve them once everyone is known.
        var changes: [IdentityChange] = []
        func settle(_ id: IdentityID) {
            guard var identity = current(id) else { return }
            lifecycle.merge(into: &identity) { managerSource, key in
                managerSource == source ? linked[key] : nil
            }
            if identity.manager == nil, let before = stored[id]?.manager,
                identity.sources.keys.contains(where: { $0 != source })
            {
                identity.manager = before
            }
            let before = stored[id]
            guard identity != before else { return }
            let transition = before.map { lifecycle.transition(from: $0, to: identity) } ?? Self.arrival(identity)
            changes.append(IdentityChange(identity: identity, transition: transition, reason: reasons[id] ?? "\(source.rawValue) mover"))
        }
        for id in stored.keys { settle(id) }
        for id in updated.keys where stored[id] == nil { settle(id) }
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
