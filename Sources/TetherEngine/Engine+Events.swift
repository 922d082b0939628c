import Foundation
import TetherCore
import TetherStore

extension Engine {
    /// Applies one lifecycle event: durably recorded, decided, and reconciled for that
    /// identity alone, in one commit. A leaver effective later is stored and applied by
    /// ``applyDueLeavers()``.
    public func submit(_ event: LifecycleEvent, actor: Actor? = nil) async throws -> EventOutcome {
        await gate.lock()
        defer { gate.unlock() }
        guard !event.id.isEmpty else { throw EngineError(.invalidEvent, "event has no id") }
        let event = event.digested()
        if try await isDuplicate(event) {
            return EventOutcome(status: .duplicate)
        }
        let now = clock.now()
        try checkVersion(of: event, now: now)
        let leaving = event.kind == .leaver || event.facts.status == .terminated || event.facts.status == .suspended
        if leaving, let effectiveAt = event.effectiveAt, effectiveAt > now {
            var changeset = Changeset(time: now)
            changeset.event = EventRecord(event: event, status: .scheduled, identity: nil, receivedAt: now)
            try await commit(changeset)
            return EventOutcome(status: .scheduled)
        }
        return try await apply(event, actor: actor ?? .source(event.source), receivedAt: now, scheduled: false)
    }

    /// Applies every scheduled leaver whose time has come; returns what each did.
    @discardableResult
    public func applyDueLeavers() async throws -> [EventOutcome] {
        await gate.lock()
        defer { gate.unlock() }
        var outcomes: [EventOutcome] = []
        for event in try await store.scheduledLeavers(dueBy: clock.now()) {
            outcomes.append(try await apply(event, actor: .scheduler, receivedAt: clock.now(), scheduled: true))
        }
        return outcomes
    }

    /// Reverses a termination or suspension on an operator's word (`tether identities reactivate`).
    public func reactivate(userName: String, actor: Actor) async throws -> EventOutcome {
        await gate.lock()
        defer { gate.unlock() }
        guard let identity = try await store.identity(userName: userName) else {
            throw EngineError(.unknownIdentity, "no identity has userName \(userName)")
        }
        let now = clock.now()
        let event = LifecycleEvent(
            id: "op_" + UUID().uuidString.lowercased(), source: .operator, kind: .joiner, occurredAt: now,
            facts: IdentityFacts(status: .active, version: Timestamp.string(now)))
        return try await apply(event, actor: actor, receivedAt: now, scheduled: false, target: identity)
    }

    /// Whether an event with this id was seen before. One seen with another digest (another
    /// body under the same id) is refused: a retry carries the same event.
    func isDuplicate(_ event: LifecycleEvent) async throws -> Bool {
        guard try await store.eventStatus(id: event.id) != nil else { return false }
        if let digest = event.digest, let stored = try await store.event(id: event.id)?.digest, stored != digest {
            throw EngineError(
                .conflictingEvent,
                "event id \(event.id) was received before with a different body; an id names one event, so send a new change under a new id")
        }
        return true
    }

    /// Refuses a pushed event (HR, SCIM) whose version is later than now plus the tolerance:
    /// applied, it would make every later event for that person stale.
    func checkVersion(of event: LifecycleEvent, now: Date) throws {
        guard event.source != .ldap, event.source != .operator else { return }
        let tolerance = configuration.versionTolerance
        let ceiling = Timestamp.versionCeiling(now: now, tolerance: tolerance)
        guard Timestamp.version(event.facts.version, isLaterThan: ceiling) else { return }
        throw EngineError(
            .futureVersion,
            "occurredAt \(Timestamp.string(event.occurredAt)) is later than now (\(Timestamp.string(now))) plus the tolerance "
                + "of \(DurationText.string(tolerance)): a time from the future would make every later event "
                + "for this person stale; send the time the change happened")
    }

    /// `facts` with a version no later than the ceiling: a directory whose clock runs ahead
    /// states versions from the future, which would make the person's later changes stale;
    /// such a version is replaced by the time the change was received.
    func bounded(_ facts: IdentityFacts, now: Date) -> IdentityFacts {
        let ceiling = Timestamp.versionCeiling(now: now, tolerance: configuration.versionTolerance)
        guard Timestamp.version(facts.version, isLaterThan: ceiling) else { return facts }
        var facts = facts
        facts.version = Timestamp.version(now)
        return facts
    }

    /// Decides `event` against the identity it correlates with and commits the outcome.
    ///
    /// A change from a source whose window plan waits for an operator is decided against the
    /// person as that plan holds them, when they are in it.
    func apply(
        _ event: LifecycleEvent, actor: Actor, receivedAt: Date, scheduled: Bool, target: Identity? = nil,
        sourceState: SourceState? = nil, stage: ChangesetStage? = nil
    ) async throws -> EventOutcome {
        let now = clock.now()
        try checkVersion(of: event, now: now)
        var event = event
        if event.source == .ldap { event.facts = bounded(event.facts, now: now) }
        var existing: Identity?
        if let target {
            existing = target
        } else {
            let candidates = try await store.correlationCandidates(for: event.facts, from: event.source)
            existing = configuration.correlator.match(event.facts, from: event.source, among: candidates)
        }
        // The source whose window this change counts in: an operator's change counts in none.
        let windowSource: Source? = event.source == .operator ? nil : event.source
        var waiting: RecordedPlan?
        if let windowSource {
            waiting = stage?.windowPlans[windowSource]
            if waiting == nil { waiting = try await heldWindowPlan(windowSource) }
        }
        if let id = existing?.id, let pending = waiting?.pendingIdentities.first(where: { $0.id == id }) {
            existing = pending
        }
        let managers = try await resolveManagers(event, existing: existing)
        let decision = configuration.lifecycle.decide(
            event, existing: existing, newID: Self.newIdentityID(for: event),
            ceiling: Timestamp.versionCeiling(now: now, tolerance: configuration.versionTolerance),
            resolveManager: { source, key in managers[ManagerKey(source: source, key: key)] })

        var changeset = Changeset(time: clock.now())
        changeset.sourceState = sourceState
        if scheduled { changeset.completedScheduledLeaver = event.id }

        switch decision {
        case .stale(let identity, let lastVersion):
            changeset.event = EventRecord(event: event, status: .stale, identity: identity, receivedAt: receivedAt)
            changeset.audit.append(AuditEntry(
                action: .eventStale, actor: actor, time: changeset.time,
                fields: [
                    "event": event.id, "identity": identity, "source": event.source.rawValue,
                    "reason": "version \(event.facts.version) is older than \(lastVersion)",
                ]))
            try await commit(changeset, stage: stage)
            return EventOutcome(status: .stale, identity: identity)

        case .apply(let identity, let transition, let lag):
            let origin: PlanOrigin = event.isExplicitLeaver ? .explicitLeaver : .other
            let renamed = existing.flatMap { $0.userName != identity.userName ? $0.userName : nil }
            let (plan, view) = try await identityPlan(identity, previousUserName: renamed, origin: origin)
            changeset.event = EventRecord(event: event, status: .applied, identity: identity.id, receivedAt: receivedAt)
            let joining = waiting?.pendingIdentities.contains { $0.id == identity.id } ?? false
            if let source = windowSource, plan.held == nil, plan.revocations > 0 || joining {
                switch try await windowCheck(
                    revocations: plan.revocations, source: source, now: changeset.time, waiting: waiting, stage: stage)
                {
                case .within(let window):
                    count(plan.revocations, in: window, source: source, changeset: &changeset, stage: stage)
                case .exceeded(let reason, let window, _) where event.isExplicitLeaver:
                    count(plan.revocations, in: window, source: source, changeset: &changeset, stage: stage)
                    changeset.audit.append(windowExceeded(
                        reason: reason, source: source, event: event, identity: identity, plan: plan, actor: actor,
                        time: changeset.time))
                case .exceeded(let reason, _, let waiting):
                    // Nothing of the change applies yet: the person and their grants stay as they are.
                    let held = try await holdInWindow(
                        identity, plan: plan, source: source, reason: reason, waiting: waiting, changeset: &changeset,
                        actor: actor, event: event.id, stage: stage)
                    try await commit(changeset, stage: stage)
                    return EventOutcome(status: .held, identity: identity.id, transition: transition, plan: held)
                }
            }
            changeset.identities = [identity]
            if let lag {
                changeset.lags = [lag]
            } else if identity.status == .active || (event.facts.status.map { $0 != .active } ?? false) {
                changeset.clearedLags = [identity.id]
            }
            if let action = transition.auditAction {
                changeset.audit.append(AuditEntry(
                    action: action, actor: actor, time: changeset.time,
                    fields: [
                        "event": event.id, "identity": identity.id, "subject": identity.userName,
                        "source": event.source.rawValue, "reason": Self.describe(transition, event: event, identity: identity),
                    ]))
            }
            add(plan, agentStates: view.changed, to: &changeset, actor: actor, event: event.id)
            try await commit(changeset, stage: stage)
            return EventOutcome(
                status: plan.held == nil ? .applied : .held, identity: identity.id, transition: transition, plan: plan)
        }
    }

    struct ManagerKey: Hashable {
        var source: Source
        var key: String
    }

    /// Looks up the managers every source names, so the pure merge can resolve them.
    private func resolveManagers(_ event: LifecycleEvent, existing: Identity?) async throws -> [ManagerKey: IdentityID] {
        var wanted: [ManagerKey] = []
        if let key = event.facts.manager { wanted.append(ManagerKey(source: event.source, key: key)) }
        for (source, facts) in existing?.sources ?? [:] {
            if let key = facts.manager { wanted.append(ManagerKey(source: source, key: key)) }
        }
        var resolved: [ManagerKey: IdentityID] = [:]
        for key in wanted where resolved[key] == nil {
            if let manager = try await store.identity(source: key.source, externalId: key.key) {
                resolved[key] = manager.id
            }
        }
        return resolved
    }

    /// A new identity's id: stable, unique, and independent of any DN.
    static func newIdentityID(for event: LifecycleEvent) -> IdentityID {
        let key = event.facts.externalId ?? event.facts.employeeNumber ?? event.facts.userName ?? ""
        return "i_" + String(Grant(subject: event.source.rawValue, agent: key, scope: event.id, resource: "").id.dropFirst(2).prefix(24))
    }

    static func describe(_ transition: IdentityTransition, event: LifecycleEvent, identity: Identity) -> String {
        switch transition {
        case .joined: "\(event.source.rawValue) joiner"
        case .moved: "\(event.source.rawValue) mover"
        case .suspended: "\(event.source.rawValue) suspended the identity"
        case .terminated: identity.isTombstone ? "\(event.source.rawValue) leaver for an unknown identity: tombstone" : "\(event.source.rawValue) leaver"
        case .reactivated: "\(event.source.rawValue) reactivated the identity"
        case .unchanged: "no change"
        }
    }
}

extension Engine {
    /// Audits a request that was refused before it could become an event (`event.rejected`):
    /// a bad signature, an expired timestamp, a malformed body. Nothing else is written.
    public func recordRejectedEvent(source: Source, reason: String, event: String? = nil) async throws {
        await gate.lock()
        defer { gate.unlock() }
        var changeset = Changeset(time: clock.now())
        var fields = ["source": source.rawValue, "reason": reason]
        if let event { fields["event"] = event }
        changeset.audit.append(AuditEntry(action: .eventRejected, actor: .source(source), time: changeset.time, fields: fields))
        try await commit(changeset)
    }
}
