import Foundation

/// What an approval reads of a held plan before it is applied.
package enum ApprovalInspection: Sendable {
    /// No plan has that id.
    case notFound
    /// The plan is no longer held: approved, rejected or superseded.
    case notHeld(PlanStatus)
    /// People in the plan took newer facts since it was held: it cannot be approved as it is.
    case identitiesChanged([String])
    /// The held plan, the changes still pending with it, and the plan a fresh computation
    /// gives now.
    case held(RecordedPlan, pending: [Identity], fresh: (Plan, AgentView))
}

/// What approving or rejecting a held plan decided.
package typealias ApprovalDecision = Decision<ApprovalOutcome>

extension Decider {
    /// Approves held plan `planID` if a fresh computation gives the same plan id; else it is
    /// stale. A window plan that no longer matches is held again in its place, with the
    /// changes still pending, so the operator can approve what would now be done.
    package func approve(
        _ planID: String, actor: Actor, now: Date, reads: any DecisionReads,
        cancelled: @escaping @Sendable () -> Bool = { false }
    ) throws -> ApprovalDecision {
        let (recorded, pending, fresh, view): (RecordedPlan, [Identity], Plan, AgentView)
        switch try inspectApproval(planID, reads: reads, cancelled: cancelled) {
        case .notFound: return ApprovalDecision(outcome: .notFound)
        case .notHeld(let status): return ApprovalDecision(outcome: .notHeld(status))
        case .identitiesChanged(let names): return ApprovalDecision(outcome: .identitiesChanged(names))
        case .held(let plan, let left, let computed): (recorded, pending, fresh, view) = (plan, left, computed.0, computed.1)
        }
        guard fresh.id == planID else {
            guard case .window = recorded.plan.scope else { return ApprovalDecision(outcome: .stale(fresh: fresh)) }
            var held = fresh
            held.held = recorded.plan.held
            var changeset = Changeset(time: now)
            changeset.pendingIdentities = pending
            if pending.isEmpty {
                changeset.planResolution = (recorded.plan.id, .rejected, "\(actor) (nothing left to approve)")
                changeset.audit.append(AuditEntry(
                    action: .planRejected, actor: actor, time: now,
                    fields: [
                        "plan": recorded.plan.id, "scope": recorded.plan.scope.description,
                        "reason": "every change it held was overtaken by newer facts",
                    ]))
            } else {
                add(held, agentStates: [], to: &changeset, actor: actor, event: nil, afterRead: true)
            }
            return ApprovalDecision(outcome: .stale(fresh: held), changeset: changeset)
        }
        if case .campaign(let campaign) = fresh.scope {
            return try closeReview(campaign, actor: actor, now: now, reads: reads, approving: planID).approval
        }
        var approved = fresh
        approved.held = nil
        var changeset = Changeset(time: now)
        changeset.planResolution = (planID, .approved, actor.description)
        changeset.identities = pending
        changeset.audit.append(AuditEntry(
            action: .planApproved, actor: actor, time: now,
            fields: ["plan": planID, "scope": fresh.scope.description, "reason": "approved by \(actor)"]))
        add(approved, agentStates: view.changed, to: &changeset, actor: actor, event: nil, afterRead: !pending.isEmpty)
        return ApprovalDecision(outcome: .applied(approved), changeset: changeset)
    }

    /// Discards held plan `planID`.
    package func reject(_ planID: String, actor: Actor, now: Date, reads: any DecisionReads) throws -> ApprovalDecision {
        guard let recorded = try reads.plan(id: planID) else { return ApprovalDecision(outcome: .notFound) }
        guard recorded.status == .held else { return ApprovalDecision(outcome: .notHeld(recorded.status)) }
        var changeset = Changeset(time: now)
        changeset.planResolution = (planID, .rejected, actor.description)
        changeset.audit.append(AuditEntry(
            action: .planRejected, actor: actor, time: now,
            fields: ["plan": planID, "scope": recorded.plan.scope.description, "reason": "rejected by \(actor)"]))
        return ApprovalDecision(outcome: .applied(recorded.plan), changeset: changeset)
    }

    /// Reads held plan `planID` and what approving it would do now, in one read.
    ///
    /// A window plan collects many people's changes: one whose record has since taken newer
    /// facts (an HR leaver meanwhile) leaves it, and the rest can still be approved. Any
    /// other plan whose people changed cannot.
    /// - Parameter cancelled: whether the approval was called off, while a full plan is computed.
    package func inspectApproval(
        _ planID: String, reads: any DecisionReads, cancelled: @escaping @Sendable () -> Bool = { false }
    ) throws -> ApprovalInspection {
        guard let recorded = try reads.plan(id: planID) else { return .notFound }
        guard recorded.status == .held else { return .notHeld(recorded.status) }
        var pending = recorded.pendingIdentities
        let changed = try changedSince(pending, reads: reads)
        if case .window = recorded.plan.scope {
            let ids = Set(changed.map(\.id))
            pending.removeAll { ids.contains($0.id) }
        } else if !changed.isEmpty {
            return .identitiesChanged(changed.map(\.userName).sorted())
        }
        let fresh = try plan(for: recorded.plan.scope, overlay: pending, reads: reads, cancelled: cancelled)
        return .held(recorded, pending: pending, fresh: fresh)
    }

    /// A fresh plan for `scope`, as the safety gates would see it now.
    package func plan(
        for scope: PlanScope, overlay: [Identity], reads: any DecisionReads,
        cancelled: @escaping @Sendable () -> Bool = { false }
    ) throws -> (Plan, AgentView) {
        switch scope {
        case .full:
            return try fullPlan(origin: .other, overlay: overlay, reads: reads, cancelled: cancelled)
        case .identity(let id):
            guard let identity = try reads.identity(id: id) else {
                return (Plan(scope: scope, steps: []), AgentView(next: [:], changed: [], transitions: []))
            }
            return try identityPlan(identity, previousUserName: nil, origin: .other, reads: reads)
        case .agent(let agent):
            return try agentPlan(agent, previous: try reads.agentStates(), origin: .other, reads: reads)
        case .target(let target):
            throw EngineError(.targetPlan, "plan of target \(target): approved through the target's drift check")
        case .window(let source):
            return try windowPlan(source, pending: overlay, reads: reads)
        case .campaign(let id):
            guard let campaign = try reads.reviewCampaign(id: id), campaign.status != .closed else {
                return (Plan(scope: scope, steps: []), AgentView(next: [:], changed: [], transitions: []))
            }
            // The time only dates what the close would record, never which steps it takes.
            let plan = try closingPlan(campaign, actor: .scheduler, now: campaign.due, reads: reads).plan
            return (plan, AgentView(next: [:], changed: [], transitions: []))
        }
    }

    /// The stored records of `pending` identities that have since taken facts from any source
    /// newer than (or absent from) the held snapshot.
    func changedSince(_ pending: [Identity], reads: any DecisionReads) throws -> [Identity] {
        var changed: [Identity] = []
        for held in pending {
            guard let stored = try reads.identity(id: held.id) else { continue }
            let newer = stored.sources.contains { source, facts in
                guard let snapshot = held.sources[source] else { return true }
                return snapshot.version < facts.version
            }
            if newer { changed.append(stored) }
        }
        return changed
    }
}
