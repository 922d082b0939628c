/// Turns desired and actual state into a plan. Pure: it decides, the engine applies.
public enum Reconciler {
    /// The plan that makes `actual` equal `desired` and moves agents to their new states.
    ///
    /// Steps come in a fixed order: quarantines (they explain the revocations that follow),
    /// revocations, releases, then grants; within a kind, by grant or agent.
    public static func plan(
        scope: PlanScope,
        desired: [String: JustifiedGrant],
        actual: [String: JustifiedGrant],
        agents: [AgentTransition] = [],
        revocationReason: (JustifiedGrant) -> String
    ) -> Plan {
        var steps: [PlanStep] = []
        for transition in agents.sorted(by: { $0.agent < $1.agent }) where transition.next.quarantined {
            steps.append(.quarantine(
                agent: transition.agent, sponsor: transition.sponsor,
                reason: transition.next.reason ?? "sponsor not active",
                proposedSponsor: transition.next.proposedSponsor))
        }
        let revoked = actual.filter { desired[$0.key] == nil }.values.sorted { $0.grant < $1.grant }
        steps += revoked.map { .revoke($0, reason: revocationReason($0)) }
        for transition in agents.sorted(by: { $0.agent < $1.agent }) where !transition.next.quarantined {
            steps.append(.release(agent: transition.agent, sponsor: transition.sponsor, reason: "sponsor \(transition.sponsor) active"))
        }
        // Sorted by index: a cold start orders a million grants, and moving indices is
        // cheaper than moving grants with their lineage.
        let granted = Array(desired.lazy.filter { actual[$0.key] == nil }.map(\.value))
        let order = granted.indices.sorted { granted[$0].grant < granted[$1].grant }
        steps.reserveCapacity(steps.count + order.count)
        for index in order { steps.append(.grant(granted[index], reason: Lineage.origin(ofPolicy: granted[index].lineage.policy))) }
        return Plan(scope: scope, steps: steps)
    }
}

/// An agent whose quarantine state changes.
public struct AgentTransition: Sendable, Hashable {
    public var agent: String
    public var sponsor: String
    public var next: AgentState

    public init(agent: String, sponsor: String, next: AgentState) {
        self.agent = agent
        self.sponsor = sponsor
        self.next = next
    }
}
