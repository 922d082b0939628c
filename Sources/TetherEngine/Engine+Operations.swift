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
        let (plan, view) = try await fullPlan(origin: origin)
        if dryRun { return .planned(plan) }
        if plan.held != nil, try await store.plan(id: plan.id)?.status == .held {
            try await store.commitSupersession(Supersession(scope: plan.scope, actor: actor, keeping: plan.id), time: clock.now())
            return .held(plan)
        }
        guard !plan.isEmpty || !view.changed.isEmpty else {
            try await store.commitSupersession(Supersession(scope: plan.scope, actor: actor), time: clock.now())
            return .applied(plan)
        }
        var changeset = Changeset(time: clock.now())
        decider.add(plan, agentStates: view.changed, to: &changeset, actor: actor, event: nil)
        try await commit(changeset)
        return plan.held == nil ? .applied(plan) : .held(plan)
    }

    /// Applies a held plan if a fresh computation gives the same plan id; else it is stale.
    public func approve(planID: String, actor: Actor) async throws -> ApprovalOutcome {
        await gate.lock()
        defer { gate.unlock() }
        guard let recorded = try await store.plan(id: planID) else { return .notFound }
        guard recorded.status == .held else { return .notHeld(recorded.status) }
        var pending = recorded.pendingIdentities
        let changed = try await changedSince(pending)
        if case .window = recorded.plan.scope {
            // A window plan collects many people's changes: one whose record has since taken
            // newer facts (an HR leaver meanwhile) leaves it, and the rest can still be approved.
            let ids = Set(changed.map(\.id))
            pending.removeAll { ids.contains($0.id) }
        } else if !changed.isEmpty {
            return .identitiesChanged(changed.map(\.userName).sorted())
        }
        let (fresh, view) = try await plan(for: recorded.plan.scope, overlay: pending)
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

    /// The stored records of `pending` identities that have since taken facts from any source
    /// newer than (or absent from) the held snapshot.
    func changedSince(_ pending: [Identity]) async throws -> [Identity] {
        var changed: [Identity] = []
        for held in pending {
            guard let stored = try await store.identity(id: held.id) else { continue }
            let newer = stored.sources.contains { source, facts in
                guard let snapshot = held.sources[source] else { return true }
                return snapshot.version < facts.version
            }
            if newer { changed.append(stored) }
        }
        return changed
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

    /// A fresh plan for `scope`, as the safety gates would see it now.
    func plan(for scope: PlanScope, overlay: [Identity] = []) async throws -> (Plan, AgentView) {
        switch scope {
        case .full:
            return try await fullPlan(origin: .other, overlay: overlay)
        case .identity(let id):
            let decider = decider
            return try await store.inspect { reads in
                guard let identity = try reads.identity(id: id) else {
                    return (Plan(scope: scope, steps: []), AgentView(next: [:], changed: [], transitions: []))
                }
                return try decider.identityPlan(identity, previousUserName: nil, origin: .other, reads: reads)
            }
        case .agent(let agent):
            let decider = decider
            return try await store.inspect { reads in
                try decider.agentPlan(agent, previous: try reads.agentStates(), origin: .other, reads: reads)
            }
        case .target(let target):
            throw EngineError(.targetPlan, "plan of target \(target): approved through the target's drift check")
        case .window(let source):
            let decider = decider
            return try await store.inspect { reads in try decider.windowPlan(source, pending: overlay, reads: reads) }
        }
    }
}
