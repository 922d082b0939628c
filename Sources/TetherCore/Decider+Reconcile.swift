import Foundation
import Synchronization

/// What a full reconciliation (a timer's, an operator's, a policy change's or a complete
/// directory read's) decided.
package typealias ReconcileDecision = Decision<ReconcileOutcome>

extension Decider {
    /// A full reconciliation: everything brought to the desired state, unless the safety
    /// gates hold the plan. With `dryRun`, the plan only.
    ///
    /// - Parameters:
    ///   - cancelled: whether the work was called off; checked between identities, and a
    ///     cancelled reconciliation throws `CancellationError`.
    ///   - planned: told how many identities of how many are planned, as they are.
    package func reconcile(
        origin: PlanOrigin, actor: Actor, dryRun: Bool, now: Date, reads: any DecisionReads,
        cancelled: @escaping @Sendable () -> Bool = { false }, planned: (@Sendable (Int, Int) -> Void)? = nil
    ) throws -> ReconcileDecision {
        let (plan, view) = try fullPlan(origin: origin, reads: reads, cancelled: cancelled, planned: planned)
        if dryRun { return ReconcileDecision(outcome: .planned(plan)) }
        if plan.held != nil, try reads.plan(id: plan.id)?.status == .held {
            let supersession = Supersession(scope: plan.scope, actor: actor, keeping: plan.id)
            return ReconcileDecision(outcome: .held(plan), changeset: try changeset(for: supersession, now: now, reads: reads))
        }
        guard !plan.isEmpty || !view.changed.isEmpty else {
            let supersession = Supersession(scope: plan.scope, actor: actor)
            return ReconcileDecision(outcome: .applied(plan), changeset: try changeset(for: supersession, now: now, reads: reads))
        }
        var changeset = Changeset(time: now)
        add(plan, agentStates: view.changed, to: &changeset, actor: actor, event: nil)
        return ReconcileDecision(outcome: plan.held == nil ? .applied(plan) : .held(plan), changeset: changeset)
    }

    /// A changeset that commits `supersession` alone, when it resolves any held plan: a fresh
    /// computation that changes nothing else still makes the older held plans of its scope
    /// obsolete.
    package func changeset(for supersession: Supersession, now: Date, reads: any DecisionReads) throws -> Changeset? {
        guard try reads.heldPlans(scope: supersession.scope).contains(where: supersession.resolves) else { return nil }
        var changeset = Changeset(time: now)
        changeset.supersedes = supersession
        return changeset
    }

    /// The plan that brings everything to the desired state.
    ///
    /// Identities are read in batches, in their planning form (each source's facts reduced to
    /// the version lineage records), and compared by grant key with the grants that exist:
    /// only the grants to add are built with their lineage, and only the grants to revoke are
    /// read with theirs, so a no-op run over a million grants holds neither.
    /// - Parameters:
    ///   - overlay: identities as they would be after changes not yet committed.
    ///   - planned: told how many identities of how many are planned, as they are.
    package func fullPlan(
        origin: PlanOrigin, overlay: [Identity] = [], reads: any DecisionReads,
        cancelled: @escaping @Sendable () -> Bool = { false }, planned: (@Sendable (Int, Int) -> Void)? = nil
    ) throws -> (Plan, AgentView) {
        let replaced = Dictionary(overlay.map { ($0.id, $0) }, uniquingKeysWith: { _, last in last })
        let summaries = try reads.identitySummaries()
        let known = Set(summaries.map(\.id))
        let added = overlay.filter { !known.contains($0.id) }
        // Who a userName means: the first active record in identity order, else the last one.
        var holders: [String: IdentitySummary] = [:]
        let ordered = summaries.map { summary in
            replaced[summary.id].map { IdentitySummary(id: $0.id, userName: $0.userName, status: $0.status) } ?? summary
        } + added.map { IdentitySummary(id: $0.id, userName: $0.userName, status: $0.status) }
        for summary in ordered where holders[summary.userName]?.status != .active {
            holders[summary.userName] = summary
        }
        let view = try agentView(previous: try reads.agentStates(), recompute: nil, reads: reads) { name in
            guard let holder = holders[name] else { return nil }
            return try replaced[holder.id] ?? reads.identity(id: holder.id)
        }

        let policies = ActivePolicies(policySet, activeAgents: view.active)
        let desired = try desiredState(reads, subjects: nil)
        var diff = DesiredDiff(actual: try reads.grantKeys())
        desired.addAutonomousGrants(activeAgents: view.active, to: &diff)
        let tally = planned.map { PlanningTally(total: ordered.count, report: $0) }
        tally?.advance(by: 0)
        try reads.planningIdentities { batch in
            try Self.fold(
                batch, overlaid: replaced, into: &diff, desired: desired, active: policies, cancelled: cancelled, tally: tally)
        }
        try Self.fold(IdentityBatch(added), into: &diff, desired: desired, active: policies, cancelled: cancelled, tally: tally)

        let unwanted = try reads.grants(ids: diff.unwanted.map(\.id))
        let actual = Dictionary(unwanted.map { ($0.id, $0.justified) }, uniquingKeysWith: { a, _ in a })
        var subjects: [String: Identity] = [:]
        for subject in Set(unwanted.map(\.grant.subject)) {
            guard let holder = holders[subject] else { continue }
            subjects[subject] = try replaced[holder.id] ?? reads.identity(id: holder.id)
        }
        let reasons = RevocationReasons(
            policySet: policySet, agentStates: view.next, exceptions: desired.exceptions, retired: retiredAgents)
        // The diff is already set-based: the plan sees only what differs, which gives the
        // same steps (and plan id) as the whole desired and actual states would.
        var plan = Reconciler.plan(
            scope: .full, desired: diff.missingByID, actual: actual, agents: view.transitions,
            revocationReason: { reasons.reason(for: $0, identity: subjects[$0.grant.subject]) })
        plan.held = configuration.safety.holdReason(for: plan, existingGrants: diff.actual.count, origin: origin)
        return (plan, view)
    }

    /// Adds the grants of the identities of `batch` (each replaced by its `overlaid` version
    /// when it has one) to `diff`, in order. A large batch is folded in consecutive parts, one
    /// per core, the first into `diff` itself and the others into parts of their own merged
    /// after it in order, so the first identity to derive a grant still gives its lineage.
    static func fold(
        _ batch: IdentityBatch, overlaid: [IdentityID: Identity] = [:], into diff: inout DesiredDiff,
        desired: DesiredState, active: ActivePolicies, cancelled: @Sendable () -> Bool, tally: PlanningTally? = nil
    ) throws {
        @Sendable func identity(at offset: Int) throws -> Identity {
            let read = try batch.identity(at: offset)
            return overlaid[read.id] ?? read
        }
        let parts = batch.count < 2_000 ? 1 : min(4, max(1, ProcessInfo.processInfo.activeProcessorCount))
        guard parts > 1 else {
            var counted = 0
            for offset in 0..<batch.count {
                if offset % 1_024 == 0 {
                    if cancelled() { throw CancellationError() }
                    tally?.advance(by: offset - counted)
                    counted = offset
                }
                desired.addGrants(of: try identity(at: offset), active: active, to: &diff)
            }
            tally?.advance(by: batch.count - counted)
            return
        }
        // Each part is folded into a slot of its own; part 0 takes `diff` over (left shared
        // with `diff`, its sets would be copied on write).
        let slots = Slots(count: parts)
        defer { slots.release() }
        let actual = diff.actual
        slots.put(diff, at: 0)
        diff = DesiredDiff(actual: actual)
        DispatchQueue.concurrentPerform(iterations: parts) { part in
            var folded = part == 0 ? slots.take(at: 0)! : DesiredDiff(actual: actual)
            let range = (part * batch.count / parts)..<((part + 1) * batch.count / parts)
            do {
                var counted = range.lowerBound
                for offset in range {
                    if offset % 1_024 == 0 {
                        if cancelled() { throw CancellationError() }
                        tally?.advance(by: offset - counted)
                        counted = offset
                    }
                    desired.addGrants(of: try identity(at: offset), active: active, to: &folded)
                }
                tally?.advance(by: range.upperBound - counted)
                slots.put(folded, at: part)
            } catch {
                slots.fail(error)
            }
        }
        if let error = slots.failure { throw error }
        diff = slots.take(at: 0)!
        for part in 1..<parts { diff.merge(slots.take(at: part)!) }
    }
}

/// How many identities of a full reconciliation are planned, counted from every thread that
/// plans them and reported as it grows.
final class PlanningTally: Sendable {
    private let done = Atomic(0)
    let total: Int
    private let report: @Sendable (Int, Int) -> Void

    init(total: Int, report: @escaping @Sendable (Int, Int) -> Void) {
        self.total = total
        self.report = report
    }

    /// Counts `count` more identities planned and reports the sum.
    func advance(by count: Int) {
        let sum = done.add(count, ordering: .relaxed).newValue
        report(sum, total)
    }
}

/// One result slot per part of a fold, each written by its own thread only.
private final class Slots: @unchecked Sendable {
    private let values: UnsafeMutableBufferPointer<DesiredDiff?>
    private let error = Mutex<(any Error)?>(nil)

    init(count: Int) {
        values = .allocate(capacity: count)
        values.initialize(repeating: nil)
    }

    func put(_ diff: DesiredDiff, at index: Int) { values[index] = diff }

    func take(at index: Int) -> DesiredDiff? { values[index].take() }

    func fail(_ failure: any Error) { error.withLock { $0 = $0 ?? failure } }

    var failure: (any Error)? { error.withLock { $0 } }

    func release() {
        _ = values.deinitialize()
        values.deallocate()
    }
}
