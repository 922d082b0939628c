import Foundation
import Metrics
import TetherCore
import TetherStore

/// The single writer of grants. Sources hand it lifecycle events; it decides with the pure
/// core, applies each decision as one store commit with its audit records, and answers
/// operators' plans, approvals and explanations.
public actor Engine {
    /// The store this engine writes; readers may share it.
    public nonisolated let store: any StateStore
    let clock: any WallClock
    public private(set) var configuration: EngineConfiguration

    /// Serialises every read–decide–write: see ``AsyncMutex``.
    let gate = AsyncMutex()

    /// The runtime check index, kept in step with every commit.
    public nonisolated let index: CheckIndex

    public init(
        store: any StateStore, configuration: EngineConfiguration, clock: any WallClock = SystemWallClock(),
        index: CheckIndex = CheckIndex()
    ) {
        self.store = store
        self.configuration = configuration
        self.clock = clock
        self.index = index
    }

    /// Loads the check index from the store; call once before serving checks.
    public func loadIndex() async throws {
        await gate.lock()
        defer { gate.unlock() }
        try await index.load(from: store, agents: configuration.policySet.agents)
    }

    /// Commits `changeset` and then updates the check index, before the caller hears back.
    @discardableResult
    func commit(_ changeset: Changeset) async throws -> CommitReceipt {
        let receipt = try await store.commit(changeset)
        committed(changeset)
        return receipt
    }

    /// What follows every commit, whoever wrote it: the check index and the metrics.
    func committed(_ changeset: Changeset) {
        index.apply(changeset)
        for entry in changeset.audit where entry.action == .safetyWindowExceeded {
            Counter(label: "tether_safety_window_exceeded_total", dimensions: [("source", entry.fields["source"] ?? "")])
                .increment()
        }
        let revocations = changeset.steps.count { if case .revoke = $0 { true } else { false } }
        if !changeset.steps.isEmpty {
            Recorder(label: "tether_plan_steps").record(changeset.steps.count)
        }
        if revocations > 0 {
            Counter(label: "tether_revocations_total").increment(by: revocations)
            if let received = changeset.event?.receivedAt {
                // Event received → revocation committed: the race against a leaver's agent.
                Timer(label: "tether_revocation_latency_seconds")
                    .recordNanoseconds(Int64(max(0, clock.now().timeIntervalSince(received)) * 1_000_000_000))
            }
        }
    }

    var policySet: PolicySet { configuration.policySet }
    var desiredState: DesiredState { DesiredState(policySet: configuration.policySet) }

    /// Audits the configuration, swaps it in once that record is committed, and reconciles
    /// everything under the new policy.
    ///
    /// If the `config.reloaded` record cannot be committed, the error is thrown and the
    /// configuration in force (policies, agents, lifecycle, safety, targets) stays as it was:
    /// a configuration never runs unrecorded.
    public func reload(_ next: EngineConfiguration, actor: Actor) async throws -> ReconcileOutcome {
        await gate.lock()
        defer { gate.unlock() }
        try await adoptHoldingLock(next, actor: actor)
        return try await reconcileHoldingLock(origin: .other, actor: .policy, dryRun: false)
    }

    /// Commits the `config.reloaded` record for `next`, then puts `next` in force; on a failed
    /// commit it throws and the configuration in force stays. Reconciles nothing: the caller
    /// swaps its own settings once this returns, then calls ``reconcile(origin:actor:dryRun:)``.
    public func adopt(_ next: EngineConfiguration, actor: Actor) async throws {
        await gate.lock()
        defer { gate.unlock() }
        try await adoptHoldingLock(next, actor: actor)
    }

    private func adoptHoldingLock(_ next: EngineConfiguration, actor: Actor) async throws {
        let previous = configuration.policySet.hash
        var changeset = Changeset(time: clock.now())
        changeset.audit.append(AuditEntry(
            action: .configReloaded, actor: actor, time: changeset.time,
            fields: ["policySet": next.policySet.hash, "reason": "policy set \(previous) replaced"]))
        try await commit(changeset)
        configuration = next
        index.setAgents(next.policySet.agents)
    }

    /// Records that a configuration was refused, keeping the one in force.
    public func recordRejectedConfiguration(_ reason: String, actor: Actor) async throws {
        await gate.lock()
        defer { gate.unlock() }
        var changeset = Changeset(time: clock.now())
        changeset.audit.append(AuditEntry(
            action: .configRejected, actor: actor, time: changeset.time,
            fields: ["reason": reason, "policySet": policySet.hash]))
        try await commit(changeset)
    }

    // MARK: Audit helpers

    func audit(_ step: PlanStep, plan: Plan, actor: Actor, event: String?, time: Date) -> AuditEntry {
        var fields: [String: String] = ["plan": plan.id, "reason": step.reason, "agent": step.agent]
        if let event { fields["event"] = event }
        switch step {
        case .grant(let justified, _), .revoke(let justified, _):
            let grant = justified.grant
            fields["grant"] = grant.id
            fields["subject"] = grant.subject
            fields["scope"] = grant.scope
            fields["resource"] = grant.resource
            fields["policy"] = justified.lineage.policy
            fields["policySet"] = policySet.hash
            let action: AuditAction = if case .grant = step { .grantGranted } else { .grantRevoked }
            return AuditEntry(action: action, actor: actor, time: time, fields: fields)
        case .quarantine(_, let sponsor, _, let proposed):
            fields["sponsor"] = sponsor
            if let proposed { fields["proposedSponsor"] = proposed }
            return AuditEntry(action: .agentQuarantined, actor: actor, time: time, fields: fields)
        case .release(_, let sponsor, _):
            fields["sponsor"] = sponsor
            return AuditEntry(action: .agentSponsored, actor: actor, time: time, fields: fields)
        }
    }

    /// Adds a plan to `changeset`: applied with an audit record per step, or held. Either way
    /// it supersedes what was held for its scope before (plans held over a source read only
    /// when `afterRead`: the plan comes from a later read, or is that read's approval).
    func add(
        _ plan: Plan, agentStates: [AgentState], to changeset: inout Changeset, actor: Actor, event: String?,
        afterRead: Bool = false
    ) {
        changeset.supersedes = Supersession(
            scope: plan.scope, actor: actor, includingHeldReads: afterRead, keeping: plan.held == nil ? nil : plan.id)
        if let reason = plan.held {
            changeset.heldPlan = plan
            changeset.audit.append(AuditEntry(
                action: .planHeld, actor: actor, time: changeset.time,
                fields: [
                    "plan": plan.id, "reason": reason, "scope": plan.scope.description,
                    "revocations": String(plan.revocations), "grants": String(plan.grants),
                ].merging(event.map { ["event": $0] } ?? [:]) { a, _ in a }))
            return
        }
        changeset.steps += plan.steps
        changeset.agentStates += agentStates
        changeset.targets = configuration.targets
        for step in plan.steps {
            changeset.audit.append(audit(step, plan: plan, actor: actor, event: event, time: changeset.time))
        }
    }
}
