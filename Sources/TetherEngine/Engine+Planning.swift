import Foundation
import TetherCore
import TetherStore

extension Engine {
    /// The plan that brings everything to the desired state.
    ///
    /// Identities are read one at a time, in their planning form (each source's facts reduced
    /// to the version lineage records), and compared by grant key with the grants that
    /// exist: only the grants to add are built with their lineage, and only the grants to
    /// revoke are read with theirs, so a no-op run over a million grants holds neither.
    /// - Parameter overlay: identities as they would be after changes not yet committed.
    func fullPlan(origin: PlanOrigin, overlay: [Identity] = []) async throws -> (Plan, AgentView) {
        let replaced = Dictionary(overlay.map { ($0.id, $0) }, uniquingKeysWith: { _, last in last })
        let summaries = try await store.identitySummaries()
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
        let holding = holders
        let decider = decider
        let view = try await store.inspect { reads in
            try decider.agentView(previous: try reads.agentStates(), recompute: nil, reads: reads) { name in
                guard let holder = holding[name] else { return nil }
                return try replaced[holder.id] ?? reads.identity(id: holder.id)
            }
        }

        let active = view.active
        let policies = ActivePolicies(policySet, activeAgents: active)
        let desired = desiredState
        var diff = DesiredDiff(actual: try await store.grantKeys())
        desired.addAutonomousGrants(activeAgents: active, to: &diff)
        // Decoding identities and evaluating policy dominate: consecutive slices of the
        // listing are folded on as many readers as there are cores, then merged in order, so
        // the first identity to derive a grant still gives its lineage.
        let slices = summaries.count < 2_000 ? 1 : min(4, max(1, ProcessInfo.processInfo.activeProcessorCount))
        var bounds: [IdentitySummary?] = [nil]
        for slice in 1..<max(slices, 1) { bounds.append(summaries[slice * summaries.count / slices - 1]) }
        bounds.append(nil)
        let reader = store
        let folded = try await withThrowingTaskGroup(of: (Int, DesiredDiff).self) { group in
            for slice in 0..<slices {
                let start = slice == 0 ? diff : DesiredDiff(actual: diff.actual)
                let (lower, upper) = (bounds[slice], bounds[slice + 1])
                group.addTask {
                    let result = try await reader.reducePlanningIdentities(after: lower, through: upper, into: start) {
                        diff, stored in
                        desired.addGrants(of: replaced[stored.id] ?? stored, active: policies, to: &diff)
                    }
                    return (slice, result)
                }
            }
            var results: [DesiredDiff?] = Array(repeating: nil, count: slices)
            for try await (slice, result) in group { results[slice] = result }
            return results.compactMap { $0 }
        }
        diff = folded[0]
        for later in folded.dropFirst() { diff.merge(later) }
        diff = await Self.fold(added, into: diff, desired: desired, active: policies)
        try Task.checkCancellation()

        let unwanted = try await store.grants(ids: diff.unwanted.map(\.id))
        let actual = Dictionary(unwanted.map { ($0.id, $0.justified) }, uniquingKeysWith: { a, _ in a })
        let subjects = try await store.inspect { reads in
            var subjects: [String: Identity] = [:]
            for subject in Set(unwanted.map(\.grant.subject)) {
                guard let holder = holding[subject] else { continue }
                subjects[subject] = try replaced[holder.id] ?? reads.identity(id: holder.id)
            }
            return subjects
        }
        let reasons = RevocationReasons(policySet: policySet, agentStates: view.next)
        // The diff is already set-based: the plan sees only what differs, which gives the
        // same steps (and plan id) as the whole desired and actual states would.
        var plan = Reconciler.plan(
            scope: .full, desired: diff.missingByID, actual: actual, agents: view.transitions,
            revocationReason: { reasons.reason(for: $0, identity: subjects[$0.grant.subject]) })
        plan.held = configuration.safety.holdReason(for: plan, existingGrants: diff.actual.count, origin: origin)
        return (plan, view)
    }

    /// Adds the grants of `identities` to `diff`, in order. Many identities (every person of a
    /// cold start's directory) are folded in consecutive slices, one per core, then merged in
    /// order, so the first identity to derive a grant still gives its lineage. A cancelled fold
    /// stops early, incomplete: its caller throws.
    static func fold(
        _ identities: [Identity], into diff: DesiredDiff, desired: DesiredState, active: ActivePolicies
    ) async -> DesiredDiff {
        let slices = identities.count < 2_000 ? 1 : min(4, max(1, ProcessInfo.processInfo.activeProcessorCount))
        guard slices > 1 else {
            var diff = diff
            for identity in identities { desired.addGrants(of: identity, active: active, to: &diff) }
            return diff
        }
        let parts = await withTaskGroup(of: (Int, DesiredDiff).self) { group in
            for slice in 0..<slices {
                let range = (slice * identities.count / slices)..<((slice + 1) * identities.count / slices)
                let start = slice == 0 ? diff : DesiredDiff(actual: diff.actual)
                group.addTask {
                    var part = start
                    for (offset, identity) in identities[range].enumerated() {
                        // The caller throws on cancellation; a cancelled fold need not finish.
                        if offset % 1_024 == 0 && Task.isCancelled { break }
                        desired.addGrants(of: identity, active: active, to: &part)
                    }
                    return (slice, part)
                }
            }
            var parts: [DesiredDiff?] = Array(repeating: nil, count: slices)
            for await (slice, part) in group { parts[slice] = part }
            return parts.compactMap { $0 }
        }
        var merged = parts[0]
        for later in parts.dropFirst() { merged.merge(later) }
        return merged
    }
}
