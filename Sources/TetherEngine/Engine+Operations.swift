import Foundation
import TetherCore
import TetherStore

extension Engine {
    /// Runs a full reconciliation: everything brought to the desired state, unless the
    /// safety gates hold the plan. With `dryRun`, nothing is written.
    /// - Parameter progress: told where the reconciliation is as it goes (`tether status`).
    @discardableResult
    public func reconcile(
        origin: PlanOrigin, actor: Actor, dryRun: Bool = false, progress: (@Sendable (ReconcileProgress) -> Void)? = nil
    ) async throws -> ReconcileOutcome {
        try await lock()
        defer { gate.unlock() }
        return try await reconcileHoldingLock(origin: origin, actor: actor, dryRun: dryRun, progress: progress)
    }

    func reconcileHoldingLock(
        origin: PlanOrigin, actor: Actor, dryRun: Bool, progress: (@Sendable (ReconcileProgress) -> Void)? = nil
    ) async throws -> ReconcileOutcome {
        let (decider, now) = (decider, clock.now())
        let planned: (@Sendable (Int, Int) -> Void)? =
            if let progress { { done, total in progress(.planning(done: done, of: total)) } } else { nil }
        let decision = try await inspectCancellably { reads, cancelled in
            try decider.reconcile(
                origin: origin, actor: actor, dryRun: dryRun, now: now, reads: reads, cancelled: cancelled, planned: planned)
        }
        if let changeset = decision.changeset {
            progress?(.committing(changes: changeset.steps.count + changeset.agentStates.count))
            try await commit(changeset)
        }
        return decision.outcome
    }

    /// Applies a held plan if a fresh computation gives the same plan id; else it is stale
    /// (``Decider/approve(_:actor:now:reads:cancelled:)``).
    public func approve(planID: String, actor: Actor) async throws -> ApprovalOutcome {
        try await lock()
        defer { gate.unlock() }
        let (decider, now) = (decider, clock.now())
        let decision = try await inspectCancellably { reads, cancelled in
            try decider.approve(planID, actor: actor, now: now, reads: reads, cancelled: cancelled)
        }
        if let changeset = decision.changeset { try await commit(changeset) }
        return decision.outcome
    }

    /// Discards a held plan.
    public func reject(planID: String, actor: Actor) async throws -> ApprovalOutcome {
        try await lock()
        defer { gate.unlock() }
        let (decider, now) = (decider, clock.now())
        let decision = try await store.inspect { reads in try decider.reject(planID, actor: actor, now: now, reads: reads) }
        if let changeset = decision.changeset { try await commit(changeset) }
        return decision.outcome
    }

    /// Names a new sponsor for an agent (`tether agents sponsor`), lifting a quarantine that
    /// awaited an operator, and reconciles that agent's grants.
    public func sponsor(agent agentID: String, userName: String, actor: Actor) async throws -> Plan {
        try await lock()
        defer { gate.unlock() }
        guard policySet.agent(agentID) != nil else {
            throw EngineError(.unknownAgent, "agent \(agentID) is not configured")
        }
        guard let sponsor = try await store.identity(userName: userName), sponsor.status == .active else {
            throw EngineError(.sponsorNotActive, "\(userName) is not an active identity; a sponsor must be one")
        }
        var states = try await store.agentStates()
        var state = states[agentID] ?? AgentState(agent: agentID, quarantined: false)
        state.sponsorOverride = userName
        state.awaitsOperator = false
        state.proposedSponsor = nil
        states[agentID] = state
        let (decider, overridden) = (decider, states)
        var (plan, view) = try await store.inspect { reads in
            try decider.agentPlan(agentID, previous: overridden, origin: .other, reads: reads)
        }
        plan.held = nil
        var changeset = Changeset(time: clock.now())
        changeset.agentStates = [state]
        changeset.audit.append(AuditEntry(
            action: .agentSponsored, actor: actor, time: changeset.time,
            fields: ["agent": agentID, "sponsor": userName, "subject": userName, "reason": "sponsor set by \(actor)"]))
        decider.add(plan, agentStates: view.changed, to: &changeset, actor: actor, event: nil)
        try await commit(changeset)
        return plan
    }

    /// Records an operator's request for a resync.
    public func recordResyncRequest(actor: Actor, detail: String) async throws {
        try await lock()
        defer { gate.unlock() }
        var changeset = Changeset(time: clock.now())
        changeset.audit.append(AuditEntry(action: .resyncRequested, actor: actor, time: changeset.time, fields: ["reason": detail]))
        try await commit(changeset)
    }
}

/// Where a full reconciliation is.
public enum ReconcileProgress: Sendable, Hashable {
    /// Identities planned so far, of all there are.
    case planning(done: Int, of: Int)
    /// The plan is being committed: its grant, revoke, quarantine and release changes.
    case committing(changes: Int)
}

extension Engine {
    /// Records an operator's exception (`tether exceptions grant|deny`) and applies what it
    /// changes to the subject's grants, in one commit.
    public func addException(_ request: ExceptionRequest, actor: Actor) async throws -> ExceptionOutcome {
        try await lock()
        defer { gate.unlock() }
        let (decider, now, id) = (decider, clock.now(), AccessException.newID())
        let decision = try await store.inspect { reads in
            try decider.addException(request, id: id, actor: actor, now: now, reads: reads)
        }
        if let changeset = decision.changeset { try await commit(changeset) }
        return decision.outcome
    }

    /// Ends exception `id` on an operator's word (`tether exceptions remove`).
    public func removeException(id: String, actor: Actor) async throws -> ExceptionOutcome {
        try await lock()
        defer { gate.unlock() }
        let (decider, now) = (decider, clock.now())
        let decision = try await store.inspect { reads in
            try decider.endException(id, expired: false, actor: actor, now: now, reads: reads)
        }
        if let changeset = decision.changeset { try await commit(changeset) }
        return decision.outcome
    }

    /// Ends every exception whose `until` has come, each in its own commit, earliest first;
    /// returns those that ended. The scheduler calls it on every turn, so an exception
    /// that came due while the daemon was stopped ends on its first turn after the start.
    @discardableResult
    public func expireDueExceptions() async throws -> [AccessException] {
        try await lock()
        defer { gate.unlock() }
        var ended: [AccessException] = []
        let decider = decider
        while true {
            let now = clock.now()
            let decision = try await store.inspect { reads -> ExceptionDecision? in
                guard let due = try decider.dueException(now: now, reads: reads) else { return nil }
                return try decider.endException(due.id, expired: true, actor: .scheduler, now: now, reads: reads)
            }
            guard let decision, case .applied(let exception, _) = decision.outcome, let changeset = decision.changeset else {
                return ended
            }
            try await commit(changeset)
            ended.append(exception)
        }
    }
}
