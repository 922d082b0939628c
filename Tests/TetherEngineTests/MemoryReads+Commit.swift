import Foundation
import TetherCore
import TetherStore

/// A changeset the memory refuses, as the store's constraints would refuse the commit.
struct MemoryCommitError: Error, CustomStringConvertible {
    var description: String
}

extension MemoryReads {
    /// Does to the memory what the store's commit does to its tables, for everything a
    /// decision reads: the event and its status, identities upserted, agent states, grants
    /// added (with `grantedAt` and the seq of their `grant.granted` record) and revoked, the
    /// held plan recorded, the resolution, the held plans superseded, the source's state and
    /// the revocation windows.
    ///
    /// - Parameter lastAuditSeq: the seq of the last audit record sealed before this changeset.
    /// - Returns: the audit entries the store would seal, in its order: the changeset's own,
    ///   then one `plan.rejected` per plan it supersedes.
    /// - Throws: ``MemoryCommitError`` for a grant already held, as the store's key refuses it;
    ///   nothing is changed then.
    @discardableResult
    mutating func apply(_ changeset: Changeset, lastAuditSeq: Int = 0) throws -> [AuditEntry] {
        var next = self
        let superseded = changeset.supersedes.map { next.supersededPlans($0, by: changeset) } ?? []
        let sealed = changeset.audit + superseded.map(\.audit)
        var grantSeqs: [String: Int] = [:]
        for (offset, entry) in sealed.enumerated() where entry.action == .grantGranted {
            if let grant = entry.fields["grant"] { grantSeqs[grant] = lastAuditSeq + 1 + offset }
        }
        if let record = changeset.event {
            // A seen id keeps the body it was first received with; its status moves on.
            next.events[record.event.id] = (next.events[record.event.id]?.0 ?? record.event, record.status)
        }
        for identity in changeset.identities {
            if let index = next.identities.firstIndex(where: { $0.id == identity.id }) {
                next.identities[index] = identity
            } else {
                next.identities.append(identity)
            }
        }
        for state in changeset.agentStates { next.states[state.agent] = state }
        for agent in changeset.registeredAgents {
            if let index = next.registered.firstIndex(where: { $0.id == agent.id }) {
                next.registered[index] = agent
            } else {
                next.registered.append(agent)
            }
        }
        for id in changeset.deletedAgents {
            next.registered.removeAll { $0.id == id }
            next.states[id] = nil
        }
        if let state = changeset.sourceState { next.sources[state.source] = state }
        next.windows.merge(changeset.windows) { _, later in later }
        for campaign in changeset.reviewCampaigns {
            if let index = next.campaigns.firstIndex(where: { $0.id == campaign.id }) {
                next.campaigns[index] = campaign
            } else {
                next.campaigns.append(campaign)
            }
        }
        for item in changeset.reviewItems {
            if let index = next.items.firstIndex(where: { $0.campaign == item.campaign && $0.number == item.number }) {
                next.items[index] = item
            } else {
                next.items.append(item)
            }
        }
        next.exceptions.removeAll { changeset.endedExceptions.contains($0.id) }
        next.exceptions += changeset.exceptions
        for step in changeset.steps {
            switch step {
            case .grant(let justified, _):
                guard !next.grants.contains(where: { $0.id == justified.grant.id }) else {
                    throw MemoryCommitError(description: "grant \(justified.grant.id) is already held; the store's key refuses it")
                }
                next.grants.append(StoredGrant(justified: justified, grantedAt: changeset.time, auditSeq: grantSeqs[justified.grant.id]))
            case .revoke(let justified, _):
                next.grants.removeAll { $0.id == justified.grant.id }
            case .quarantine, .release:
                continue
            }
        }
        if let plan = changeset.heldPlan {
            let recorded = RecordedPlan(
                plan: plan, status: .held, createdAt: changeset.time, pendingIdentities: changeset.pendingIdentities)
            if let index = next.plans.firstIndex(where: { $0.plan.id == plan.id }) {
                // One already held stays as it was held; one approved or rejected is held again.
                if next.plans[index].status != .held { next.plans[index] = recorded }
            } else {
                next.plans.append(recorded)
            }
        }
        if let resolution = changeset.planResolution, let index = next.plans.firstIndex(where: { $0.plan.id == resolution.id }) {
            next.plans[index].status = resolution.status
            next.plans[index].resolvedBy = resolution.by
        }
        for plan in superseded {
            if let index = next.plans.firstIndex(where: { $0.plan.id == plan.id && $0.status == .held }) {
                next.plans[index].status = .rejected
                next.plans[index].resolvedBy = plan.resolvedBy
            }
        }
        self = next
        return sealed
    }

    /// The held plans `supersession` makes obsolete, oldest first, with the record of each: those
    /// it resolves, other than the plan the changeset resolves itself.
    private func supersededPlans(
        _ supersession: Supersession, by changeset: Changeset
    ) -> [(id: String, resolvedBy: String, audit: AuditEntry)] {
        let scope = supersession.scope.description
        let reason = supersession.keeping.map { "superseded by plan \($0), held for the same scope" }
            ?? "superseded: a later computation for the same scope no longer gives this plan"
        return plans.filter { supersession.resolves($0) && $0.plan.id != changeset.planResolution?.id }
            .sorted { ($0.createdAt, $0.plan.id) < ($1.createdAt, $1.plan.id) }
            .map { recorded in
                (
                    recorded.plan.id, "\(supersession.actor) (superseded)",
                    AuditEntry(
                        action: .planRejected, actor: supersession.actor, time: changeset.time,
                        fields: ["plan": recorded.plan.id, "scope": scope, "reason": reason])
                )
            }
    }
}

/// What the store keeps beside what a decision reads, held in memory: the audit entries of
/// every changeset applied, in order, the directory lags and the scheduled leavers.
struct MemoryStore: Sendable {
    /// A leaver stored to apply at its time.
    struct ScheduledLeaver: Sendable {
        var event: String
        var effectiveAt: Date
        var done = false
    }

    var reads = MemoryReads()
    var audit: [AuditEntry] = []
    var lags: [IdentityID: DirectoryLag] = [:]
    var scheduled: [ScheduledLeaver] = []

    /// Applies `changeset` as one commit: all of it, or (when the memory refuses it) nothing.
    mutating func commit(_ changeset: Changeset) throws {
        audit += try reads.apply(changeset, lastAuditSeq: audit.count)
        for lag in changeset.lags { lags[lag.identity] = lag }
        for identity in changeset.clearedLags { lags[identity] = nil }
        if let record = changeset.event, record.status == .scheduled, let effectiveAt = record.event.effectiveAt,
            !scheduled.contains(where: { $0.event == record.event.id })
        {
            scheduled.append(ScheduledLeaver(event: record.event.id, effectiveAt: effectiveAt))
        }
        if let done = changeset.completedScheduledLeaver, let index = scheduled.firstIndex(where: { $0.event == done }) {
            scheduled[index].done = true
        }
    }

    /// The scheduled leavers not yet applied whose time has come by `due`, in the store's order.
    func scheduledLeavers(dueBy due: Date) -> [LifecycleEvent] {
        scheduled.filter { !$0.done && $0.effectiveAt <= due }
            .sorted { ($0.effectiveAt, $0.event) < ($1.effectiveAt, $1.event) }
            .compactMap { reads.events[$0.event]?.0 }
    }
}
