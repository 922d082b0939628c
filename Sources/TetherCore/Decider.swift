import Foundation

/// The engine's decisions, as functions of the work, of what the store holds (read through
/// one ``DecisionReads``, one read transaction), of the configuration and of the time.
///
/// The engine runs a decision inside the store's `inspect` (one read transaction) under its
/// gate, then commits the ``Changeset`` it returns: lock → inspect and decide → commit →
/// check index → answer.
/// A decider writes nothing and keeps no state: the same reads give the same changeset.
package struct Decider: Sendable {
    package let configuration: EngineConfiguration
    /// The grants in the store when the check index has them loaded: counting a million rows
    /// takes about ten milliseconds, and the safety gates ask for every change that revokes.
    package let knownGrantCount: Int?
    /// Registered agents out of force, with why (`is disabled`, `was deleted`): the reason
    /// their grants are revoked.
    package var retiredAgents: [String: String]

    /// Decisions under `configuration`; `knownGrantCount` when the check index has it.
    package init(configuration: EngineConfiguration, knownGrantCount: Int? = nil, retiredAgents: [String: String] = [:]) {
        self.configuration = configuration
        self.knownGrantCount = knownGrantCount
        self.retiredAgents = retiredAgents
    }

    /// The policy set in force, with the registered agents that are not disabled.
    package var policySet: PolicySet { configuration.policySet }
    /// The ids of the agents in force: configured, or registered and not disabled.
    package var agentsInForce: Set<String> { Set(policySet.agents.map(\.id)) }
    /// What the policy set and the exceptions in force for `subjects` (every subject when
    /// nil) derive.
    package func desiredState(_ reads: any DecisionReads, subjects: Set<String>?) throws -> DesiredState {
        DesiredState(policySet: policySet, exceptions: ExceptionSet(try reads.exceptions(subjects: subjects)))
    }

    /// The grants in the store, from the check index when it is loaded.
    package func grantCount(_ reads: any DecisionReads) throws -> Int {
        if let knownGrantCount { return knownGrantCount }
        return try reads.grantCount()
    }
}

/// What changesets decided earlier in one batch leave behind before they commit: the later
/// decisions of the batch count with it. Derived from the changesets alone.
package struct Staged: Sendable {
    /// The revocation windows as the staged changesets leave them.
    package var windows: [Source: RevocationWindow] = [:]
    /// The window plans as the staged changesets leave them, by source.
    package var windowPlans: [Source: RecordedPlan] = [:]
    /// Grants the staged changesets add, less those they revoke: the store's count is behind
    /// by this much until they commit.
    package var grantChange = 0

    /// Nothing staged yet: the first decision of a batch.
    package init() {}

    /// Takes in what `changeset` leaves behind.
    package mutating func absorb(_ changeset: Changeset) {
        windows.merge(changeset.windows) { _, later in later }
        if let held = changeset.heldPlan, case .window(let source) = held.scope {
            windowPlans[source] = RecordedPlan(
                plan: held, status: .held, createdAt: changeset.time, pendingIdentities: changeset.pendingIdentities)
        }
        for step in changeset.steps {
            switch step {
            case .grant: grantChange += 1
            case .revoke: grantChange -= 1
            case .quarantine, .release: break
            }
        }
    }
}

extension Decider {
    /// The audit record of one applied plan step.
    package func audit(_ step: PlanStep, plan: Plan, actor: Actor, event: String?, time: Date) -> AuditEntry {
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
    /// - Parameter fields: more fields for the `plan.held` record (the target a drift plan is of).
    package func add(
        _ plan: Plan, agentStates: [AgentState], to changeset: inout Changeset, actor: Actor, event: String?,
        afterRead: Bool = false, fields: [String: String] = [:]
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
                ].merging(event.map { ["event": $0] } ?? [:]) { a, _ in a }.merging(fields) { a, _ in a }))
            return
        }
        // Shared with the plan, not copied, when the changeset has no steps yet: a cold start's
        // plan has ten million.
        if changeset.steps.isEmpty { changeset.steps = plan.steps } else { changeset.steps += plan.steps }
        changeset.agentStates += agentStates
        changeset.targets = configuration.targets
        for step in plan.steps {
            changeset.audit.append(audit(step, plan: plan, actor: actor, event: event, time: changeset.time))
        }
    }
}
