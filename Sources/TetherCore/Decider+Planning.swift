import Foundation

/// The agents' next states and the changes among them.
package struct AgentView: Sendable {
    /// Every agent's state after the change.
    package var next: [String: AgentState]
    /// The states that changed, to commit.
    package var changed: [AgentState]
    /// Quarantines and releases: the steps a plan shows.
    package var transitions: [AgentTransition]
    /// Agents that may hold grants now and could not before, or the reverse; includes an
    /// agent seen for the first time, whose grants a scoped plan must then cover.
    package var activityChanged: Set<String> = []
    /// The agents in force (configured, or registered and not disabled); nil counts every
    /// agent with a state.
    package var known: Set<String>?

    /// A view of the agents.
    package init(
        next: [String: AgentState], changed: [AgentState], transitions: [AgentTransition], activityChanged: Set<String> = [],
        known: Set<String>? = nil
    ) {
        self.next = next
        self.changed = changed
        self.transitions = transitions
        self.activityChanged = activityChanged
        self.known = known
    }

    /// The agents that may hold grants: those in force and not quarantined.
    package var active: Set<String> {
        Set(next.values.filter { !$0.quarantined && (known?.contains($0.agent) ?? true) }.map(\.agent))
    }
}

extension Decider {
    /// Recomputes the state of `agents` (all when nil) from their sponsors' liveness.
    /// - Parameter sponsor: the identity a sponsor's userName names now.
    package func agentView(
        previous: [String: AgentState], recompute agents: Set<String>?, reads: any DecisionReads,
        sponsor: (String) throws -> Identity?
    ) throws -> AgentView {
        var view = AgentView(next: previous, changed: [], transitions: [], known: agentsInForce)
        for agent in policySet.agents {
            let before = previous[agent.id]
            guard agents?.contains(agent.id) ?? true || before == nil else { continue }
            let names = Sponsorship.effectiveSponsors(of: agent, state: before)
            var sponsors = try names.map { Sponsorship.Sponsor(userName: $0, identity: try sponsor($0)) }
            if agent.onSponsorLeave == .transferToManager, !sponsors.contains(where: \.isActive) {
                // The manager is proposed only when the last sponsor left.
                for index in sponsors.indices {
                    if let managerID = sponsors[index].identity?.manager {
                        sponsors[index].manager = try reads.identity(id: managerID)
                    }
                }
            }
            let next = Sponsorship.decide(agent, previous: before, sponsors: sponsors)
            view.next[agent.id] = next
            if next != before { view.changed.append(next) }
            // A quarantine names every sponsor; a release the ones active now.
            let sponsorText =
                next.quarantined ? names.joined(separator: ",") : sponsors.filter(\.isActive).map(\.userName).joined(separator: ",")
            if next.quarantined != (before?.quarantined ?? false) {
                view.transitions.append(AgentTransition(agent: agent.id, sponsor: sponsorText, next: next))
            }
            if next.quarantined != (before?.quarantined ?? true) { view.activityChanged.insert(agent.id) }
        }
        // States of agents no longer configured or registered are kept: they hold no grants
        // anyway (``AgentView/active`` counts only the agents in force).
        return view
    }

    /// The plan for one identity and the agents it sponsors, after it changed.
    ///
    /// - Parameter previousUserName: the identity's userName before the change, when it changed.
    package func identityPlan(
        _ identity: Identity, previousUserName: String?, origin: PlanOrigin, reads: any DecisionReads
    ) throws -> (Plan, AgentView) {
        let subjects = Set([identity.userName] + (previousUserName.map { [$0] } ?? []))
        let sponsored = Set(
            policySet.agents.filter { agent in
                agent.sponsors.contains(where: subjects.contains)
            }.map(\.id))
        let previousStates = try reads.agentStates()
        let sponsoredNow = sponsored.union(previousStates.values.filter { state in
            state.sponsorOverride.map(subjects.contains) ?? false
        }.map(\.agent))
        let view = try agentView(previous: previousStates, recompute: sponsoredNow, reads: reads) { name in
            subjects.contains(name) && name == identity.userName ? identity : try reads.identity(userName: name)
        }
        return try scopedPlan(
            scope: .identity(identity.id), subjects: subjects, agents: view.activityChanged, view: view, origin: origin,
            identities: [identity], reads: reads)
    }

    /// The plan for one agent's grants, after its sponsor changed.
    package func agentPlan(
        _ agent: String, previous: [String: AgentState], origin: PlanOrigin, reads: any DecisionReads
    ) throws -> (Plan, AgentView) {
        let view = try agentView(previous: previous, recompute: [agent], reads: reads) { try reads.identity(userName: $0) }
        return try scopedPlan(
            scope: .agent(agent), subjects: [], agents: [agent], view: view, origin: origin, identities: [], reads: reads)
    }

    /// Plans the grants whose subject is in `subjects` or whose agent is in `agents`.
    /// - Parameter exceptions: the exceptions in force after the change, when it changes
    ///   them; read from the store otherwise.
    package func scopedPlan(
        scope: PlanScope, subjects: Set<String>, agents: Set<String>, view: AgentView, origin: PlanOrigin,
        identities: [Identity], exceptions: ExceptionSet? = nil, reads: any DecisionReads
    ) throws -> (Plan, AgentView) {
        let active = view.active
        var people: [String: Identity] = [:]
        for identity in identities { people[identity.userName] = identity }
        // Another active identity may share a userName with one that left (a rehire under a
        // new record): its grants are not this identity's to revoke.
        let changing = Set(identities.map(\.id))
        for subject in subjects where people[subject]?.status != .active {
            if let other = try reads.identity(userName: subject), !changing.contains(other.id),
                other.status == .active || people[subject] == nil
            {
                people[subject] = other
            }
        }
        let released = agents.filter { active.contains($0) }
        let desiredState =
            if let exceptions { DesiredState(policySet: policySet, exceptions: exceptions) } else {
                try desiredState(reads, subjects: released.isEmpty ? subjects : nil)
            }
        var desired: [String: JustifiedGrant] = [:]
        for identity in people.values {
            desired.merge(desiredState.grants(for: identity, activeAgents: active)) { a, _ in a }
        }
        if !released.isEmpty {
            let everyone = try reads.identities(status: .active)
            for (id, grant) in desiredState.compute(identities: everyone, activeAgents: released) {
                desired[id] = desired[id] ?? grant
            }
        }
        desired = desired.filter { subjects.contains($0.value.grant.subject) || agents.contains($0.value.grant.agent) }
        let stored = try reads.grants(subjects: subjects, agents: agents)
        let actual = Dictionary(stored.map { ($0.id, $0.justified) }, uniquingKeysWith: { a, _ in a })
        let reasons = RevocationReasons(
            policySet: policySet, agentStates: view.next, exceptions: desiredState.exceptions, retired: retiredAgents)
        var lookups: [String: Identity] = people
        for grant in actual.values where lookups[grant.grant.subject] == nil && !grant.grant.subject.hasPrefix("agent:") {
            // Only subjects outside this change are looked up: the changing identity is in `people`.
            lookups[grant.grant.subject] = try reads.identity(userName: grant.grant.subject)
        }
        var plan = Reconciler.plan(
            scope: scope, desired: desired, actual: actual, agents: view.transitions,
            revocationReason: { reasons.reason(for: $0, identity: lookups[$0.grant.subject]) })
        // Only when the count can matter (an explicit leaver is never held, and a plan that
        // revokes nothing never by ratio).
        let countMatters = origin != .explicitLeaver && (plan.revocations > 0 || configuration.safety.maxRevocationRatio < 0)
        plan.held = configuration.safety.holdReason(
            for: plan, existingGrants: countMatters ? try grantCount(reads) : 0, origin: origin)
        return (plan, view)
    }
}
