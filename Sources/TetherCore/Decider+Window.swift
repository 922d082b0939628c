import Foundation

/// What a source's revocation window says of a plan the source is about to commit.
package enum WindowCheck {
    /// Within the budget: the plan commits, and the window counts its revocations.
    case within(RevocationWindow)
    /// Past the budget, or the source's earlier changes already wait in `waiting`: why.
    case exceeded(reason: String, window: RevocationWindow, waiting: RecordedPlan?)
}

extension Decider {
    /// The held plan collecting `source`'s changes past its window (scope `window:<source>`), if one waits.
    package func heldWindowPlan(_ source: Source, reads: any DecisionReads) throws -> RecordedPlan? {
        try reads.heldPlans(scope: .window(source)).last
    }

    /// Checks `revocations` from `source` against its window as it stands at `now`.
    ///
    /// While a window plan of the source waits for an operator, every further change of that
    /// source that revokes joins it, however long ago the window's revocations were: the
    /// source is suspect until someone has looked.
    package func windowCheck(
        revocations: Int, source: Source, now: Date, waiting: RecordedPlan?, staged: Staged = Staged(),
        reads: any DecisionReads
    ) throws -> WindowCheck {
        let safety = configuration.safety
        let stored = try staged.windows[source] ?? reads.revocationWindow(source)
        let window = (stored ?? RevocationWindow()).at(now, length: safety.window)
        if let waiting {
            return .exceeded(
                reason: "changes from \(source.rawValue) past its window wait for approval in plan \(waiting.plan.id)",
                window: window, waiting: waiting)
        }
        let grants = try grantCount(reads) + staged.grantChange
        if let reason = safety.windowExceeded(adding: revocations, to: window, existingGrants: grants, source: source) {
            return .exceeded(reason: reason, window: window, waiting: nil)
        }
        return .within(window)
    }

    /// Counts `revocations` in `window` and commits the window with `changeset`.
    package func count(_ revocations: Int, in window: RevocationWindow, source: Source, changeset: inout Changeset) {
        var window = window
        // At most about 120 entries in a window, however many changes revoke within it.
        window.record(revocations, at: changeset.time, granularity: configuration.safety.window / 120)
        changeset.windows[source] = window
    }

    /// The `safety.window_exceeded` record of an explicit leaver applied past its source's budget.
    package func windowExceeded(reason: String, source: Source, event: LifecycleEvent, identity: Identity, plan: Plan, actor: Actor, time: Date)
        -> AuditEntry
    {
        AuditEntry(
            action: .safetyWindowExceeded, actor: actor, time: time,
            fields: [
                "source": source.rawValue, "event": event.id, "identity": identity.id, "subject": identity.userName,
                "plan": plan.id, "revocations": String(plan.revocations),
                "reason": "\(reason); applied: an explicit leaver is never held",
            ])
    }

    /// Holds `identity`'s change and its `plan` in `source`'s window plan: the plan that waits
    /// grows by this change (a person already waiting in it is replaced by the newer change),
    /// and its identities are applied only when an operator approves it.
    /// - Returns: the window plan as now held.
    package func holdInWindow(
        _ identity: Identity, plan: Plan, source: Source, reason: String, waiting: RecordedPlan?,
        changeset: inout Changeset, actor: Actor, event: String?, reads: any DecisionReads
    ) throws -> Plan {
        var pending = waiting?.pendingIdentities ?? []
        let replacing = pending.contains { $0.id == identity.id }
        pending.removeAll { $0.id == identity.id }
        pending.append(identity)
        var held: Plan
        if replacing {
            held = try windowPlan(source, pending: pending, reads: reads).0
        } else {
            held = Plan.combining((waiting.map { [$0.plan] } ?? []) + [plan], scope: .window(source))
        }
        held.held = waiting?.plan.held ?? reason
        changeset.pendingIdentities = pending
        add(held, agentStates: [], to: &changeset, actor: actor, event: event, afterRead: true)
        return held
    }

    /// The plan a window of `source` holds for `pending`, computed afresh: each identity's own
    /// plan against the store as it is, combined. What an approval compares with the held plan.
    package func windowPlan(_ source: Source, pending: [Identity], reads: any DecisionReads) throws -> (Plan, AgentView) {
        var plans: [Plan] = []
        var states: [String: AgentState] = [:]
        var next: [String: AgentState] = [:]
        for identity in pending {
            let stored = try reads.identity(id: identity.id)
            let renamed = stored.flatMap { $0.userName != identity.userName ? $0.userName : nil }
            let (plan, view) = try identityPlan(identity, previousUserName: renamed, origin: .other, reads: reads)
            plans.append(plan)
            for state in view.changed { states[state.agent] = state }
            next.merge(view.next) { _, later in later }
        }
        let changed = states.values.sorted { $0.agent < $1.agent }
        return (Plan.combining(plans, scope: .window(source)), AgentView(next: next, changed: changed, transitions: [], known: agentsInForce))
    }
}
