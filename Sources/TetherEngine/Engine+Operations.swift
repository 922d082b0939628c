import Foundation
import TetherCore
import TetherStore

extension Engine {
    /// Runs a full reconciliation: everything brought to the desired state, unless the
    /// safety gates hold the plan. With `dryRun`, nothing is written.
    @discardableResult
    public func reconcile(origin: PlanOrigin, actor: Actor, dryRun: Bool = false) async throws -> ReconcileOutcome {
        await gate.lock()
        defer { gate.unlock() }
        return try await reconcileHoldingLock(origin: origin, actor: actor, dryRun: dryRun)
    }

    func reconcileHoldingLock(origin: PlanOrigin, actor: Actor, dryRun: Bool) async throws -> ReconcileOutcome {
        let (decider, now) = (decider, clock.now())
        let decision = try await inspectCancellably { reads, cancelled in
            try decider.reconcile(origin: origin, actor: actor, dryRun: dryRun, now: now, reads: reads, cancelled: cancelled)
        }
        if let changeset = decision.changeset { try await commit(changeset) }
        return decision.outcome
    }

    /// Applies a held plan if a fresh computation gives the same plan id; else it is stale.
    public func approve(planID: String, actor: Actor) async throws -> ApprovalOutcome {
        await gate.lock()
        defer { gate.unlock() }
        let decider = decider
        let inspection = try await inspectCancellably { reads, cancelled in
            try decider.inspectApproval(planID, reads: reads, cancelled: cancelled)
        }
        let (recorded, pending, fresh, view): (RecordedPlan, [Identity], Plan, AgentView)
        switch inspection {
        case .notFound: return .notFound
        case .notHeld(let status): return .notHeld(status)
        case .identitiesChanged(let names): return .identitiesChanged(names)
        case .held(let plan, let left, let computed): (recorded, pending, fresh, view) = (plan, left, computed.0, computed.1)
        }
        guard fresh.id == planID else {
            if case .window = recorded.plan.scope { return .stale(fresh: try await rehold(fresh, pending: pending, replacing: recorded, actor: actor)) }
            return .stale(fresh: fresh)
        }
        var approved = fresh
        approved.held = nil
        var changeset = Changeset(time: clock.now())
        changeset.planResolution = (planID, .approved, actor.description)
        changeset.identities = pending
        changeset.audit.append(AuditEntry(
            action: .planApproved, actor: actor, time: changeset.time,
            fields: ["plan": planID, "scope": fresh.scope.description, "reason": "approved by \(actor)"]))
        decider.add(approved, agentStates: view.changed, to: &changeset, actor: actor, event: nil,
            afterRead: !pending.isEmpty)
        try await commit(changeset)
        return .applied(approved)
    }

    /// Holds `fresh` in place of a window plan that no longer matches, with the changes still
    /// pending, so the operator can approve what would now be done; returns it as held.
    private func rehold(_ fresh: Plan, pending: [Identity], replacing recorded: RecordedPlan, actor: Actor) async throws -> Plan {
        var held = fresh
        held.held = recorded.plan.held
        var changeset = Changeset(time: clock.now())
        changeset.pendingIdentities = pending
        if pending.isEmpty {
            changeset.planResolution = (recorded.plan.id, .rejected, "\(actor) (nothing left to approve)")
            changeset.audit.append(AuditEntry(
                action: .planRejected, actor: actor, time: changeset.time,
                fields: [
                    "plan": recorded.plan.id, "scope": recorded.plan.scope.description,
                    "reason": "every change it held was overtaken by newer facts",
                ]))
        } else {
            decider.add(held, agentStates: [], to: &changeset, actor: actor, event: nil, afterRead: true)
        }
        try await commit(changeset)
        return held
    }

    /// Discards a held plan.
    public func reject(planID: String, actor: Actor) async throws -> ApprovalOutcome {
        await gate.lock()
        defer { gate.unlock() }
        guard let recorded = try await store.plan(id: planID) else { return .notFound }
        guard recorded.status == .held else { return .notHeld(recorded.status) }
        var changeset = Changeset(time: clock.now())
        changeset.planResolution = (planID, .rejected, actor.description)
        changeset.audit.append(AuditEntry(
            action: .planRejected, actor: actor, time: changeset.time,
            fields: ["plan": planID, "scope": recorded.plan.scope.description, "reason": "rejected by \(actor)"]))
        try await commit(changeset)
        return .applied(recorded.plan)
    }

    /// Names a new sponsor for an agent (`tether agents sponsor`), lifting a quarantine that
    /// awaited an operator, and reconciles that agent's grants.
    public func sponsor(agent agentID: String, userName: String, actor: Actor) async throws -> Plan {
        await gate.lock()
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
        await gate.lock()
        defer { gate.unlock() }
        var changeset = Changeset(time: clock.now())
        changeset.audit.append(AuditEntry(action: .resyncRequested, actor: actor, time: changeset.time, fields: ["reason": detail]))
        try await commit(changeset)
    }
}
