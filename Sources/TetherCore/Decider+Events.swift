import Foundation

/// One lifecycle event to decide, with what the engine knows of it beyond the store.
package struct EventWork: Sendable {
    /// The event, digested when it came from a sender.
    package var event: LifecycleEvent
    /// Who the audit records name.
    package var actor: Actor
    /// When Tether received it.
    package var receivedAt: Date
    /// The time the decision is taken at.
    package var now: Date
    /// A scheduled leaver whose time came: its schedule is marked done with it.
    package var scheduled = false
    /// The identity the event applies to, when the caller knows it (an operator's
    /// reactivation, a directory deletion); else it is correlated.
    package var target: Identity?
    /// The key the source knew the person by before (a SCIM `externalId` edit): the event
    /// applies to the identity linked to it, if any.
    package var previousKey: String?
    /// Decide a seen event id as a duplicate (checking its body is the same).
    package var checkDuplicate = false
    /// Store a leaver effective later as scheduled rather than refusing it.
    package var mayBeScheduled = false
    /// The directory resume point and mode the change advances its source to.
    package var advance: SourceAdvance?
    /// What the changesets decided earlier in the same batch leave behind.
    package var staged = Staged()

    /// A piece of work; everything past `now` is off unless given.
    package init(
        event: LifecycleEvent, actor: Actor, receivedAt: Date, now: Date, scheduled: Bool = false, target: Identity? = nil,
        previousKey: String? = nil, checkDuplicate: Bool = false, mayBeScheduled: Bool = false,
        advance: SourceAdvance? = nil, staged: Staged = Staged()
    ) {
        self.event = event
        self.actor = actor
        self.receivedAt = receivedAt
        self.now = now
        self.scheduled = scheduled
        self.target = target
        self.previousKey = previousKey
        self.checkDuplicate = checkDuplicate
        self.mayBeScheduled = mayBeScheduled
        self.advance = advance
        self.staged = staged
    }
}

/// A directory change's resume point, committed with the change.
package struct SourceAdvance: Sendable {
    /// The resume point, when the change carries one.
    package var cookie: Data?
    /// `syncrepl` or `poll`.
    package var mode: String

    /// A resume point and mode.
    package init(cookie: Data?, mode: String) {
        self.cookie = cookie
        self.mode = mode
    }
}

/// What a decision decided: what the caller hears, and what to commit for it, if anything.
package struct Decision<Outcome: Sendable>: Sendable {
    /// What the caller hears (the sender of an event, the operator who approved).
    package var outcome: Outcome
    /// What to commit, if anything.
    package var changeset: Changeset?

    /// An outcome and what to commit for it.
    package init(outcome: Outcome, changeset: Changeset? = nil) {
        self.outcome = outcome
        self.changeset = changeset
    }
}

/// What one event decided.
package typealias EventDecision = Decision<EventOutcome>

extension Decider {
    /// Decides several events as one unit, from one read: each as ``decide(_:reads:)`` does
    /// for its identity alone, a later one against the store as it was before the batch and
    /// against the revocation windows and window plans as the earlier ones leave them
    /// (``Staged``). Leavers take effect now: an `effectiveAt` after `now` is refused.
    ///
    /// - Parameter previousKeys: event id → the key the source knew the person by before
    ///   (a SCIM `externalId` edit): the event applies to the identity linked to that key.
    /// - Returns: each event's outcome, in order, and the changesets to commit together.
    package func decide(
        batch events: [LifecycleEvent], actor: Actor?, previousKeys: [String: String], now: Date,
        reads: any DecisionReads
    ) throws -> (outcomes: [EventOutcome], changesets: [Changeset]) {
        for event in events {
            guard !event.id.isEmpty else { throw EngineError(.invalidEvent, "event has no id") }
            if let effectiveAt = event.effectiveAt, effectiveAt > now {
                throw EngineError(.invalidEvent, "event \(event.id) takes effect later; batched events take effect now")
            }
        }
        var staged = Staged()
        var changesets: [Changeset] = []
        var outcomes: [EventOutcome] = []
        for event in events {
            let work = EventWork(
                event: event.digested(), actor: actor ?? .source(event.source), receivedAt: now, now: now,
                previousKey: previousKeys[event.id], checkDuplicate: true, staged: staged)
            let decision = try decide(work, reads: reads)
            if let changeset = decision.changeset {
                staged.absorb(changeset)
                changesets.append(changeset)
            }
            outcomes.append(decision.outcome)
        }
        return (outcomes, changesets)
    }

    /// Decides one event against the store as `reads` sees it.
    ///
    /// A change from a source whose window plan waits for an operator is decided against the
    /// person as that plan holds them, when they are in it.
    package func decide(_ work: EventWork, reads: any DecisionReads) throws -> EventDecision {
        var event = work.event
        let now = work.now
        if work.checkDuplicate, try isDuplicate(event, reads: reads) {
            var changeset: Changeset?
            if let advance = work.advance, advance.cookie != nil {
                changeset = Changeset(time: now)
                changeset?.sourceState = try advancedState(event.source, advance, reads: reads, now: now)
            }
            return EventDecision(outcome: EventOutcome(status: .duplicate), changeset: changeset)
        }
        try checkVersion(of: event, now: now)
        let leaving = event.kind == .leaver || event.facts.status == .terminated || event.facts.status == .suspended
        if work.mayBeScheduled, leaving, let effectiveAt = event.effectiveAt, effectiveAt > now {
            var changeset = Changeset(time: now)
            changeset.event = EventRecord(event: event, status: .scheduled, identity: nil, receivedAt: now)
            return EventDecision(outcome: EventOutcome(status: .scheduled), changeset: changeset)
        }
        if event.source == .ldap { event.facts = bounded(event.facts, now: now) }
        var existing = work.target
        if existing == nil, let key = work.previousKey {
            existing = try reads.identity(source: event.source, externalId: key)
        }
        if existing == nil {
            let candidates = try reads.correlationCandidates(for: event.facts, from: event.source)
            existing = configuration.correlator.match(event.facts, from: event.source, among: candidates)
        }
        // The source whose window this change counts in: an operator's change counts in none.
        let windowSource: Source? = event.source == .operator ? nil : event.source
        var waiting: RecordedPlan?
        if let windowSource {
            waiting = try work.staged.windowPlans[windowSource] ?? heldWindowPlan(windowSource, reads: reads)
        }
        if let id = existing?.id, let pending = waiting?.pendingIdentities.first(where: { $0.id == id }) {
            existing = pending
        }
        let managers = try resolveManagers(event, existing: existing, reads: reads)
        let decision = configuration.lifecycle.decide(
            event, existing: existing, newID: Self.newIdentityID(for: event),
            ceiling: Timestamp.versionCeiling(now: now, tolerance: configuration.versionTolerance),
            resolveManager: { source, key in managers[ManagerKey(source: source, key: key)] })

        var changeset = Changeset(time: now)
        if let advance = work.advance { changeset.sourceState = try advancedState(event.source, advance, reads: reads, now: now) }
        if work.scheduled { changeset.completedScheduledLeaver = event.id }
        let actor = work.actor

        switch decision {
        case .stale(let identity, let lastVersion):
            changeset.event = EventRecord(event: event, status: .stale, identity: identity, receivedAt: work.receivedAt)
            changeset.audit.append(AuditEntry(
                action: .eventStale, actor: actor, time: changeset.time,
                fields: [
                    "event": event.id, "identity": identity, "source": event.source.rawValue,
                    "reason": "version \(event.facts.version) is older than \(lastVersion)",
                ]))
            return EventDecision(outcome: EventOutcome(status: .stale, identity: identity), changeset: changeset)

        case .apply(let identity, let transition, let lag):
            let origin: PlanOrigin = event.isExplicitLeaver ? .explicitLeaver : .other
            let renamed = existing.flatMap { $0.userName != identity.userName ? $0.userName : nil }
            let (plan, view) = try identityPlan(identity, previousUserName: renamed, origin: origin, reads: reads)
            changeset.event = EventRecord(event: event, status: .applied, identity: identity.id, receivedAt: work.receivedAt)
            let joining = waiting?.pendingIdentities.contains { $0.id == identity.id } ?? false
            if let source = windowSource, plan.held == nil, plan.revocations > 0 || joining {
                switch try windowCheck(
                    revocations: plan.revocations, source: source, now: now, waiting: waiting, staged: work.staged,
                    reads: reads)
                {
                case .within(let window):
                    count(plan.revocations, in: window, source: source, changeset: &changeset)
                case .exceeded(let reason, let window, _) where event.isExplicitLeaver:
                    count(plan.revocations, in: window, source: source, changeset: &changeset)
                    changeset.audit.append(windowExceeded(
                        reason: reason, source: source, event: event, identity: identity, plan: plan, actor: actor,
                        time: changeset.time))
                case .exceeded(let reason, _, let waiting):
                    // Nothing of the change applies yet: the person and their grants stay as they are.
                    let held = try holdInWindow(
                        identity, plan: plan, source: source, reason: reason, waiting: waiting, changeset: &changeset,
                        actor: actor, event: event.id, reads: reads)
                    return EventDecision(
                        outcome: EventOutcome(status: .held, identity: identity.id, transition: transition, plan: held),
                        changeset: changeset)
                }
            }
            changeset.identities = [identity]
            if let lag {
                changeset.lags = [lag]
            } else if identity.status == .active || (event.facts.status.map { $0 != .active } ?? false) {
                changeset.clearedLags = [identity.id]
            }
            if let entry = AuditEntry.identityTransition(
                transition, of: identity, source: event.source, reason: Self.describe(transition, event: event, identity: identity),
                event: event.id, actor: actor, time: changeset.time)
            {
                changeset.audit.append(entry)
            }
            add(plan, agentStates: view.changed, to: &changeset, actor: actor, event: event.id)
            return EventDecision(
                outcome: EventOutcome(
                    status: plan.held == nil ? .applied : .held, identity: identity.id, transition: transition, plan: plan),
                changeset: changeset)
        }
    }

    /// Whether an event with this id was seen before. One seen with another digest (another
    /// body under the same id) is refused: a retry carries the same event.
    package func isDuplicate(_ event: LifecycleEvent, reads: any DecisionReads) throws -> Bool {
        guard try reads.eventStatus(id: event.id) != nil else { return false }
        if let digest = event.digest, let stored = try reads.event(id: event.id)?.digest, stored != digest {
            throw EngineError(
                .conflictingEvent,
                "event id \(event.id) was received before with a different body; an id names one event, so send a new change under a new id")
        }
        return true
    }

    /// Refuses a pushed event (HR, SCIM) whose version is later than now plus the tolerance:
    /// applied, it would make every later event for that person stale.
    package func checkVersion(of event: LifecycleEvent, now: Date) throws {
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
    package func bounded(_ facts: IdentityFacts, now: Date) -> IdentityFacts {
        let ceiling = Timestamp.versionCeiling(now: now, tolerance: configuration.versionTolerance)
        guard Timestamp.version(facts.version, isLaterThan: ceiling) else { return facts }
        var facts = facts
        facts.version = Timestamp.version(now)
        return facts
    }

    /// The source's state once a change brings it to `advance`.
    package func advancedState(_ source: Source, _ advance: SourceAdvance, reads: any DecisionReads, now: Date) throws -> SourceState {
        var state = try reads.sourceState(source) ?? SourceState(source: source, health: .ok)
        if let cookie = advance.cookie { state.cookie = cookie }
        state.mode = advance.mode
        state.lastSuccess = now
        return state
    }

    /// A manager as a source names it: the source's key for that person.
    package struct ManagerKey: Hashable {
        var source: Source
        var key: String
    }

    /// Looks up the managers every source names, so the pure merge can resolve them.
    private func resolveManagers(_ event: LifecycleEvent, existing: Identity?, reads: any DecisionReads) throws
        -> [ManagerKey: IdentityID]
    {
        var wanted: [ManagerKey] = []
        if let key = event.facts.manager { wanted.append(ManagerKey(source: event.source, key: key)) }
        for (source, facts) in existing?.sources ?? [:] {
            if let key = facts.manager { wanted.append(ManagerKey(source: source, key: key)) }
        }
        var resolved: [ManagerKey: IdentityID] = [:]
        for key in wanted where resolved[key] == nil {
            if let manager = try reads.identity(source: key.source, externalId: key.key) {
                resolved[key] = manager.id
            }
        }
        return resolved
    }

    /// A new identity's id: stable, unique, and independent of any DN.
    package static func newIdentityID(for event: LifecycleEvent) -> IdentityID {
        let key = event.facts.externalId ?? event.facts.employeeNumber ?? event.facts.userName ?? ""
        return "i_" + String(Grant(subject: event.source.rawValue, agent: key, scope: event.id, resource: "").id.dropFirst(2).prefix(24))
    }

    package static func describe(_ transition: IdentityTransition, event: LifecycleEvent, identity: Identity) -> String {
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
