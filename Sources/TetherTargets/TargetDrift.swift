import Crypto
import Foundation
import TetherConfig
import TetherCore
import TetherStore

/// How a target differs from the store, and the repairs that would bring it back in step.
/// Pure: it decides; ``DriftChecker`` reads, gates and commits.
public struct TargetDrift: Sendable, Hashable {
    /// The reason audit records give for a grant re-sent to a target that lacks it.
    public static let missingReason = "drift: not on target"
    /// The reason audit records give for a grant on a target that nothing in the store explains.
    public static let orphanReason = "drift: orphan on target"

    /// The target's id.
    public let target: String
    /// Grants the target holds that no grant in the store explains, in grant order.
    public let orphans: [Grant]
    /// Grants the store holds that the target lacks, in grant order.
    public let missing: [Grant]
    /// What to do with orphans.
    public let orphanPolicy: OrphanPolicy
    /// How many grants the target holds.
    public let targetGrants: Int
    /// The id of the drift as a plan of scope `target:<id>` (``plan(policies:policySet:held:)``):
    /// the same drift gives the same id, so a held drift can be approved by it.
    public let id: String

    /// Compares what the target holds with the store's baseline. Grants with a change waiting
    /// in the target's outbox are left out: the target is expected to lag on them.
    public static func compare(
        target: String, baseline: TargetBaseline, held: [Grant], orphans orphanPolicy: OrphanPolicy
    ) -> TargetDrift {
        var onTarget: [String: Grant] = [:]
        for grant in held { onTarget[grant.id] = grant }
        let orphans = onTarget.filter { baseline.grants[$0.key] == nil && !baseline.waiting.contains($0.key) }
            .values.sorted()
        let missing = baseline.grants.filter { onTarget[$0.key] == nil && !baseline.waiting.contains($0.key) }
            .values.sorted()
        return TargetDrift(
            target: target, orphans: orphans, missing: missing, orphanPolicy: orphanPolicy, targetGrants: onTarget.count)
    }

    init(target: String, orphans: [Grant], missing: [Grant], orphanPolicy: OrphanPolicy, targetGrants: Int) {
        self.target = target
        self.orphans = orphans
        self.missing = missing
        self.orphanPolicy = orphanPolicy
        self.targetGrants = targetGrants
        id = Plan(
            scope: .target(target),
            steps: Self.steps(orphans: orphans, missing: missing, orphanPolicy: orphanPolicy, policies: [:], policySet: "")
        ).id
    }

    /// Whether the target holds exactly what the store says.
    public var isInStep: Bool { orphans.isEmpty && missing.isEmpty }

    /// The drift as plan steps, for the safety gates and for `tether plans`: orphans revoked
    /// (only when the policy is `revoke`), then missing grants granted.
    public func steps(policies: [String: String], policySet: String) -> [PlanStep] {
        Self.steps(orphans: orphans, missing: missing, orphanPolicy: orphanPolicy, policies: policies, policySet: policySet)
    }

    /// The drift as a plan of scope `target:<id>`; its id is ``id``.
    public func plan(policies: [String: String], policySet: String, held: String? = nil) -> Plan {
        Plan(scope: .target(target), steps: steps(policies: policies, policySet: policySet), held: held)
    }

    private static func steps(
        orphans: [Grant], missing: [Grant], orphanPolicy: OrphanPolicy, policies: [String: String], policySet: String
    ) -> [PlanStep] {
        var steps: [PlanStep] = []
        if orphanPolicy == .revoke {
            steps += orphans.map {
                .revoke(JustifiedGrant(grant: $0, lineage: Lineage(policy: "", policySet: "")), reason: orphanReason)
            }
        }
        steps += missing.map {
            .grant(
                JustifiedGrant(grant: $0, lineage: Lineage(policy: policies[$0.id] ?? "", policySet: policySet)),
                reason: missingReason)
        }
        return steps
    }

    /// Why the safety gates hold these repairs, or nil: revoked orphans count as revocations,
    /// measured against the grants the target holds.
    public func holdReason(safety: SafetyLimits) -> String? {
        let plan = plan(policies: [:], policySet: "")
        return safety.holdReason(for: plan, existingGrants: targetGrants, origin: .other).map {
            "drift on target \(target): \($0)"
        }
    }

    /// The repairs, each with the audit record that names the target.
    public func repairs(policies: [String: String], policySet: String, actor: Actor, time: Date) -> [TargetRepair] {
        func fields(_ grant: Grant, reason: String) -> [String: String] {
            [
                "grant": grant.id, "subject": grant.subject, "agent": grant.agent, "scope": grant.scope,
                "resource": grant.resource, "target": target, "plan": id, "reason": reason,
            ]
        }
        var repairs: [TargetRepair] = orphans.map { grant in
            switch orphanPolicy {
            case .revoke:
                TargetRepair(
                    target: target, grant: grant, kind: .revokeOrphan,
                    audit: AuditEntry(action: .grantRevoked, actor: actor, time: time, fields: fields(grant, reason: Self.orphanReason)))
            case .report:
                TargetRepair(
                    target: target, grant: grant, kind: .reportOrphan,
                    audit: AuditEntry(
                        action: .grantOrphaned, actor: actor, time: time,
                        fields: fields(grant, reason: Self.orphanReason + "; reported only (orphans: report)")))
            }
        }
        repairs += missing.map { grant in
            var values = fields(grant, reason: Self.missingReason)
            values["policy"] = policies[grant.id]
            values["policySet"] = policySet
            return TargetRepair(
                target: target, grant: grant, kind: .resend,
                audit: AuditEntry(action: .grantGranted, actor: actor, time: time, fields: values))
        }
        return repairs
    }
}
