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
        add(plan, agentStates: view.changed, to: &changeset, actor: actor, event: nil)
        try await commit(changeset)
        return plan.held == nil ? .applied(plan) : .held(plan)
    }

    /// Applies a held plan if a fresh computation gives the same plan id; else it is stale.
    public func approve(planID: String, actor: Actor) async throws -> ApprovalOutcome {
        await gate.lock()
        defer { gate.unlock() }
        guard let recorded = try await store.plan(id: planID) else { return .notFound }
        guard recorded.status == .held else { return .notHeld(recorded.status) }
        let changed = try await changedSinceHeld(recorded.pendingIdentities)
        guard changed.isEmpty else { return .identitiesChanged(changed) }
        let (fresh, view) = try await plan(for: recorded.plan.scope, overlay: recorded.pendingIdentities)
        guard fresh.id == planID else { return .stale(fresh: fresh) }
        var approved = fresh
        approved.held = nil
        var changeset = Changeset(time: clock.now())
        changeset.planResolution = (planID, .approved, actor.description)
        changeset.identities = recorded.pendingIdentities
        changeset.audit.append(AuditEntry(
            action: .planApproved, actor: actor, time: changeset.time,
            fields: ["plan": planID, "scope": fresh.scope.description, "reason": "approved by \(actor)"]))
        add(approved, agentStates: view.changed, to: &changeset, actor: actor, event: nil,
            afterRead: !recorded.pendingIdentities.isEmpty)
        try await commit(changeset)
        return .applied(approved)
    }

    /// The user names of `pending` identities whose stored record has since taken facts from
    /// any source newer than (or absent from) the held snapshot.
    func changedSinceHeld(_ pending: [Identity]) async throws -> [String] {
        var changed: [String] = []
        for held in pending {
            guard let stored = try await store.identity(id: held.id) else { continue }
            let newer = stored.sources.contains { source, facts in
                guard let snapshot = held.sources[source] else { return true }
                return snapshot.version < facts.version
            }
            if newer { changed.append(stored.userName) }
        }
        return changed.sorted()
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
        var (plan, view) = try await agentPlan(agentID, previous: states, origin: .other)
        plan.held = nil
        var changeset = Changeset(time: clock.now())
        changeset.agentStates = [state]
        changeset.audit.append(AuditEntry(
            action: .agentSponsored, actor: actor, time: changeset.time,
            fields: ["agent": agentID, "sponsor": userName, "subject": userName, "reason": "sponsor set by \(actor)"]))
        add(plan, agentStates: view.changed, to: &changeset, actor: actor, event: nil)
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
            guard let identity = try await store.identity(id: id) else {
                return (Plan(scope: scope, steps: []), AgentView(next: [:], changed: [], transitions: []))
            }
            return try await identityPlan(identity, previousUserName: nil, origin: .other)
        case .agent(let agent):
            return try await agentPlan(agent, previous: try await store.agentStates(), origin: .other)
        case .target(let target):
            throw EngineError(.targetPlan, "plan of target \(target): approved through the target's drift check")
        }
    }
}
