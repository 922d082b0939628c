import Foundation
import TetherCore
import TetherStore

/// What a drift check of one target concluded, for the engine to commit: the drift checker
/// reads and compares, the engine writes.
public enum DriftSettlement: Sendable {
    /// The target is in step with the store: drift held for it before is obsolete.
    case inStep(target: String)
    /// The repairs wait for an operator: `plan` is held (scope `target:<id>`), with the
    /// reason the safety gates gave.
    case hold(Plan)
    /// The repairs to apply, built at `time`. `approving`: the drift plan `plan` is applied
    /// on an operator's word, past the gates. Each repair still applies only if its grant has
    /// no audit record after `unchangedAfter` (it did not change during the check).
    case repair(target: String, plan: String, repairs: [TargetRepair], approving: Bool, unchangedAfter: Int, time: Date)
}

extension Engine {
    /// What a drift check compares `target` with, read in one snapshot.
    public func targetBaseline(target: String) async throws -> TargetBaseline {
        try await store.targetBaseline(target: target)
    }

    /// Commits what a drift check of one target concluded; returns the repairs applied.
    @discardableResult
    public func settle(_ settlement: DriftSettlement, actor: Actor) async throws -> [TargetRepair] {
        try await lock()
        defer { gate.unlock() }
        switch settlement {
        case .inStep(let target):
            try await commitAlone(Supersession(scope: .target(target), actor: actor), time: clock.now())
            return []

        case .hold(let plan):
            guard case .target(let target) = plan.scope, plan.held != nil else {
                throw EngineError(.targetPlan, "plan \(plan.id) is not a held plan of a target")
            }
            let time = clock.now()
            // Held already: recorded and audited once while it stays held.
            guard try await store.plan(id: plan.id)?.status != .held else {
                try await commitAlone(Supersession(scope: plan.scope, actor: actor, keeping: plan.id), time: time)
                return []
            }
            var changeset = Changeset(time: time)
            decider.add(plan, agentStates: [], to: &changeset, actor: actor, event: nil, fields: ["target": target])
            try await commit(changeset)
            return []

        case .repair(let target, let planID, let repairs, let approving, let auditSeq, let time):
            var audit: [AuditEntry] = []
            var resolution: (id: String, status: PlanStatus, by: String)?
            if approving {
                audit.append(AuditEntry(
                    action: .planApproved, actor: actor, time: time,
                    fields: ["plan": planID, "scope": "target:\(target)", "target": target, "reason": "approved by \(actor)"]))
                if try await store.plan(id: planID)?.status == .held {
                    resolution = (planID, .approved, actor.description)
                }
            }
            return try await store.commitTargetRepairs(
                repairs, audit: audit, resolution: resolution, supersedes: Supersession(scope: .target(target), actor: actor),
                unchangedAfter: auditSeq, time: time)
        }
    }

    /// Commits `supersession` alone, through the engine's commit, when it resolves any held
    /// plan (``Decider/changeset(for:now:reads:)``).
    private func commitAlone(_ supersession: Supersession, time: Date) async throws {
        let decider = decider
        let changeset = try await store.inspect { reads in try decider.changeset(for: supersession, now: time, reads: reads) }
        if let changeset { try await commit(changeset) }
    }
}
