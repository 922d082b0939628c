import Foundation
import TetherCore
import TetherStore

/// The agents' next states and the changes among them.
struct AgentView {
    var next: [String: AgentState]
    var changed: [AgentState]
    /// Quarantines and releases: the steps a plan shows.
    var transitions: [AgentTransition]
    /// Agents that may hold grants now and could not before, or the reverse; includes an
    /// agent seen for the first time, whose grants a scoped plan must then cover.
    var activityChanged: Set<String> = []

    var active: Set<String> { Set(next.values.filter { !$0.quarantined }.map(\.agent)) }
}

extension Engine {
    /// Recomputes the state of `agents` (all when nil) from their sponsors' liveness.
    func agentView(
        previous: [String: AgentState], recompute agents: Set<String>?,
        sponsor: (String) async throws -> Identity?
    ) async throws -> AgentView {
        var view = AgentView(next: previous, changed: [], transitions: [])
        for agent in policySet.agents {
            let before = previous[agent.id]
            guard agents?.contains(agent.id) ?? true || before == nil else { continue }
            let sponsorName = Sponsorship.effectiveSponsor(of: agent, state: before)
            let sponsorIdentity = try await sponsor(sponsorName)
            var manager: Identity?
            if let managerID = sponsorIdentity?.manager { manager = try await store.identity(id: managerID) }
            let next = Sponsorship.decide(agent, previous: before, sponsor: sponsorIdentity, manager: manager)
            view.next[agent.id] = next
            if next != before { view.changed.append(next) }
            if next.quarantined != (before?.quarantined ?? false) {
                view.transitions.append(AgentTransition(agent: agent.id, sponsor: sponsorName, next: next))
            }
            if next.quarantined != (before?.quarantined ?? true) { view.activityChanged.insert(agent.id) }
        }
        // States of agents no longer configured are kept: they hold no grants anyway.
        return view
    }

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
        func identity(named userName: String) async throws -> Identity? {
            guard let holder = holders[userName] else { return nil }
            if let changed = replaced[holder.id] { return changed }
            return try await store.identity(id: holder.id)
        }
        let view = try await agentView(previous: try await store.agentStates(), recompute: nil) {
            try await identity(named: $0)
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
        var subjects: [String: Identity] = [:]
        for subject in Set(unwanted.map(\.grant.subject)) { subjects[subject] = try await identity(named: subject) }
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

    /// The plan for one identity and the agents it sponsors, after it changed.
    ///
    /// - Parameter previousUserName: the identity's userName before the change, when it changed.
    func identityPlan(_ identity: Identity, previousUserName: String?, origin: PlanOrigin) async throws -> (Plan, AgentView) {
        let subjects = Set([identity.userName] + (previousUserName.map { [$0] } ?? []))
        let sponsored = Set(
            policySet.agents.filter { agent in
                subjects.contains(Sponsorship.effectiveSponsor(of: agent, state: nil))
            }.map(\.id))
        let previousStates = try await store.agentStates()
        let sponsoredNow = sponsored.union(previousStates.values.filter { state in
            state.sponsorOverride.map(subjects.contains) ?? false
        }.map(\.agent))
        let view = try await agentView(previous: previousStates, recompute: sponsoredNow) { name in
            subjects.contains(name) && name == identity.userName ? identity : try await self.store.identity(userName: name)
        }
        let moved = view.activityChanged
        return try await scopedPlan(
            scope: .identity(identity.id), subjects: subjects, agents: moved, view: view, origin: origin,
            identities: [identity])
    }

    /// The plan for one agent's grants, after its sponsor changed.
    func agentPlan(_ agent: String, previous: [String: AgentState], origin: PlanOrigin) async throws -> (Plan, AgentView) {
        let view = try await agentView(previous: previous, recompute: [agent]) { try await self.store.identity(userName: $0) }
        return try await scopedPlan(
            scope: .agent(agent), subjects: [], agents: [agent], view: view, origin: origin, identities: [])
    }

    /// Plans the grants whose subject is in `subjects` or whose agent is in `agents`.
    private func scopedPlan(
        scope: PlanScope, subjects: Set<String>, agents: Set<String>, view: AgentView, origin: PlanOrigin,
        identities: [Identity]
    ) async throws -> (Plan, AgentView) {
        let active = view.active
        var people: [String: Identity] = [:]
        for identity in identities { people[identity.userName] = identity }
        // Another active identity may share a userName with one that left (a rehire under a
        // new record): its grants are not this identity's to revoke.
        let changing = Set(identities.map(\.id))
        for subject in subjects where people[subject]?.status != .active {
            if let other = try await store.identity(userName: subject), !changing.contains(other.id),
                other.status == .active || people[subject] == nil
            {
                people[subject] = other
            }
        }
        var desired: [String: JustifiedGrant] = [:]
        for identity in people.values {
            desired.merge(desiredState.grants(for: identity, activeAgents: active)) { a, _ in a }
        }
        let released = agents.filter { active.contains($0) }
        if !released.isEmpty {
            let everyone = try await store.identities(status: .active)
            for (id, grant) in desiredState.compute(identities: everyone, activeAgents: released) {
                desired[id] = desired[id] ?? grant
            }
        }
        desired = desired.filter { subjects.contains($0.value.grant.subject) || agents.contains($0.value.grant.agent) }
        let stored = try await store.grants(subjects: subjects, agents: agents)
        let actual = Dictionary(stored.map { ($0.id, $0.justified) }, uniquingKeysWith: { a, _ in a })
        let reasons = RevocationReasons(policySet: policySet, agentStates: view.next)
        var lookups: [String: Identity] = people
        for grant in actual.values where lookups[grant.grant.subject] == nil && !grant.grant.subject.hasPrefix("agent:") {
            // Only subjects outside this change are looked up: the changing identity is in `people`.
            lookups[grant.grant.subject] = try await store.identity(userName: grant.grant.subject)
        }
        var plan = Reconciler.plan(
            scope: scope, desired: desired, actual: actual, agents: view.transitions,
            revocationReason: { reasons.reason(for: $0, identity: lookups[$0.grant.subject]) })
        // Only when the count can matter (an explicit leaver is never held, and a plan that
        // revokes nothing never by ratio).
        let countMatters = origin != .explicitLeaver && (plan.revocations > 0 || configuration.safety.maxRevocationRatio < 0)
        plan.held = configuration.safety.holdReason(
            for: plan, existingGrants: countMatters ? try await grantCount() : 0, origin: origin)
        return (plan, view)
    }

    /// The grants in the store: from the check index once it is loaded, since counting a
    /// million rows in the store takes about ten milliseconds and the safety gates ask for
    /// every change that revokes (the window asks for explicit leavers too).
    func grantCount() async throws -> Int {
        if let count = index.loadedCount { return count }
        return try await store.grantCount()
    }
}
