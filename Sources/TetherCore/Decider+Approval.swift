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

extension Decider {
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
