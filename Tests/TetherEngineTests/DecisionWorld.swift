import Foundation
import TetherCore
import TetherEngine
import TetherStore

/// The decisions of ``World`` with no store and no engine: each piece of work is built as the
/// engine builds it, decided by the ``Decider`` over what the memory holds, and its changeset
/// applied to the memory as the store would commit it. A clock tests move.
final class DecisionWorld {
    var memory = MemoryStore()
    var configuration: EngineConfiguration
    /// 2026-11-28T12:00:00Z, as ``World``'s clock starts.
    private(set) var now = Date(timeIntervalSince1970: 1_795_867_200)

    init(
        policySet: PolicySet = Fixtures.policySet,
        safety: SafetyLimits = SafetyLimits(maxRevocationsPerRun: 10_000, maxRevocationRatio: 1, minGrantsForRatio: 1_000_000),
        precedence: [Source] = [.hr, .scim, .ldap],
        targets: [String] = []
    ) {
        configuration = EngineConfiguration(
            policySet: policySet, lifecycle: Lifecycle(precedence: precedence), safety: safety, targets: targets)
    }

    /// What the decisions read.
    var reads: MemoryReads { memory.reads }
    /// The decision step under the configuration in force; the grants are counted from the memory.
    var decider: Decider { Decider(configuration: configuration) }

    func advance(by seconds: TimeInterval) { now += seconds }

    // MARK: Work, built as the engine builds it

    /// ``Engine/submit(_:actor:)``.
    @discardableResult
    func submit(_ event: LifecycleEvent, actor: Actor? = nil) throws -> EventOutcome {
        guard !event.id.isEmpty else { throw EngineError(.invalidEvent, "event has no id") }
        return try decideAndCommit(EventWork(
            event: event.digested(), actor: actor ?? .source(event.source), receivedAt: now, now: now,
            checkDuplicate: true, mayBeScheduled: true))
    }

    /// ``Engine/submit(_:actor:previousKeys:with:)`` without SCIM resources: decided one after
    /// the other against the memory as it was before the batch, committed together.
    func submit(_ events: [LifecycleEvent], actor: Actor? = nil, previousKeys: [String: String] = [:]) throws -> [EventOutcome] {
        let (outcomes, changesets) = try decider.decide(
            batch: events, actor: actor, previousKeys: previousKeys, now: now, reads: reads)
        var next = memory
        for changeset in changesets { try next.commit(changeset) }
        memory = next
        return outcomes
    }

    /// ``Engine/applyDirectoryEntry(_:source:cookie:mode:)``.
    @discardableResult
    func applyDirectoryEntry(_ facts: IdentityFacts, source: Source, cookie: Data? = nil, mode: String) throws -> EventOutcome {
        let key = facts.externalId ?? facts.userName ?? "?"
        let event = LifecycleEvent(
            id: "\(source.rawValue):\(key):\(facts.version)", source: source, kind: .mover,
            occurredAt: now, facts: facts, isExplicitLeaver: false)
        return try decideAndCommit(EventWork(
            event: event, actor: .source(source), receivedAt: now, now: now, checkDuplicate: true,
            advance: SourceAdvance(cookie: cookie, mode: mode)))
    }

    /// ``Engine/applyDirectoryDeletion(externalId:source:cookie:mode:)``: the identity the
    /// entry was becomes a leaver.
    @discardableResult
    func applyDirectoryDeletion(externalId: String, source: Source, cookie: Data? = nil, mode: String) throws -> EventOutcome {
        let advance = SourceAdvance(cookie: cookie, mode: mode)
        guard let identity = try reads.identity(source: source, externalId: externalId), var facts = identity.sources[source] else {
            guard cookie != nil else { return EventOutcome(status: .duplicate) }
            var changeset = Changeset(time: now)
            changeset.sourceState = try decider.advancedState(source, advance, reads: reads, now: now)
            try memory.commit(changeset)
            return EventOutcome(status: .duplicate)
        }
        facts.status = .terminated
        facts.version = max(facts.version, Timestamp.version(now))
        let event = LifecycleEvent(
            id: "\(source.rawValue):\(externalId):deleted:\(facts.version)", source: source, kind: .leaver,
            occurredAt: now, facts: facts, isExplicitLeaver: false)
        return try decideAndCommit(EventWork(
            event: event, actor: .source(source), receivedAt: now, now: now, target: identity, advance: advance))
    }

    /// ``Engine/applyDueLeavers()``.
    @discardableResult
    func applyDueLeavers() throws -> [EventOutcome] {
        try memory.scheduledLeavers(dueBy: now).map { event in
            try decideAndCommit(EventWork(event: event, actor: .scheduler, receivedAt: now, now: now, scheduled: true))
        }
    }

    /// ``Engine/approve(planID:actor:)``.
    func approve(planID: String, actor: Actor) throws -> ApprovalOutcome {
        let decision = try decider.approve(planID, actor: actor, now: now, reads: reads)
        if let changeset = decision.changeset { try memory.commit(changeset) }
        return decision.outcome
    }

    /// ``Engine/reject(planID:actor:)``.
    @discardableResult
    func reject(planID: String, actor: Actor) throws -> ApprovalOutcome {
        let decision = try decider.reject(planID, actor: actor, now: now, reads: reads)
        if let changeset = decision.changeset { try memory.commit(changeset) }
        return decision.outcome
    }

    /// ``Engine/reconcile(origin:actor:dryRun:)``.
    @discardableResult
    func reconcile(origin: PlanOrigin, actor: Actor, dryRun: Bool = false) throws -> ReconcileOutcome {
        let decision = try decider.reconcile(origin: origin, actor: actor, dryRun: dryRun, now: now, reads: reads)
        if let changeset = decision.changeset { try memory.commit(changeset) }
        return decision.outcome
    }

    /// ``Engine/reload(_:actor:)``: the `config.reloaded` record, the configuration put in
    /// force, and a full reconciliation under it.
    @discardableResult
    func reload(_ next: EngineConfiguration, actor: Actor) throws -> ReconcileOutcome {
        var changeset = Changeset(time: now)
        changeset.audit.append(AuditEntry(
            action: .configReloaded, actor: actor, time: changeset.time,
            fields: ["policySet": next.policySet.hash, "reason": "policy set \(configuration.policySet.hash) replaced"]))
        try memory.commit(changeset)
        configuration = next
        return try reconcile(origin: .other, actor: .policy)
    }

    /// ``Engine/applySnapshot(_:actor:)``.
    @discardableResult
    func applySnapshot(_ snapshot: DirectorySnapshot, actor: Actor? = nil) throws -> ReconcileOutcome {
        let decision = try decider.decide(snapshot, actor: actor ?? .source(snapshot.source), now: now, reads: reads)
        if let changeset = decision.changeset { try memory.commit(changeset) }
        return decision.outcome
    }

    private func decideAndCommit(_ work: EventWork) throws -> EventOutcome {
        let decision = try decider.decide(work, reads: reads)
        if let changeset = decision.changeset { try memory.commit(changeset) }
        return decision.outcome
    }

    // MARK: What the memory holds

    /// The grants held as `subject agent scope resource` lines, in the store's order.
    func grantLines() -> [String] {
        reads.grants.map(\.grant).sorted(by: <).map { "\($0.subject) \($0.agent) \($0.scope) \($0.resource)" }
    }

    func identity(_ userName: String) throws -> Identity? { try reads.identity(userName: userName) }

    func auditActions() -> [String] { memory.audit.map(\.action.rawValue) }

    /// The directory lags recorded, by userName.
    func lags() -> [DirectoryLag] { memory.lags.values.sorted { ($0.userName, $0.identity) < ($1.userName, $1.identity) } }

    /// ``World/seedSponsors()``: jdoe (support) and mkhan (HR, managed by boss), and boss.
    func seedSponsors() throws {
        try submit(Events.ldapEvent(Events.ldap("boss", version: 1, department: "Exec")))
        try submit(Events.ldapEvent(Events.ldap("jdoe", version: 1, department: "Support")))
        try submit(Events.ldapEvent(Events.ldap("mkhan", version: 1, department: "People", title: "HR Partner", manager: "uuid-boss")))
        try reconcile(origin: .other, actor: .policy)
    }
}
