/// Says why a grant that exists is no longer desired, in words an operator can act on.
public struct RevocationReasons: Sendable {
    public let policySet: PolicySet
    public let agentStates: [String: AgentState]
    /// The exceptions in force after the change.
    public let exceptions: ExceptionSet
    /// Why agents out of force are: a registered agent disabled or deleted, by id.
    public let retired: [String: String]

    public init(
        policySet: PolicySet, agentStates: [String: AgentState], exceptions: ExceptionSet = ExceptionSet(),
        retired: [String: String] = [:]
    ) {
        self.policySet = policySet
        self.agentStates = agentStates
        self.exceptions = exceptions
        self.retired = retired
    }

    /// - Parameter identity: the identity the grant's subject names now, if any.
    public func reason(for justified: JustifiedGrant, identity: Identity?) -> String {
        let grant = justified.grant
        guard let agent = policySet.agent(grant.agent) else {
            if let retired = retired[grant.agent] { return "agent \(grant.agent) \(retired)" }
            return "agent \(grant.agent) is no longer configured or registered"
        }
        if let state = agentStates[agent.id], state.quarantined {
            return "agent \(agent.id) quarantined: \(state.reason ?? "sponsor not active")"
        }
        if let deny = exceptions.deny(of: grant) {
            return "denied by exception \(deny.id) (\(deny.approver)): \(deny.reason)"
        }
        if agent.kind == .autonomous {
            return "no longer declared for agent \(agent.id)"
        }
        guard let identity else { return "identity \(grant.subject) unknown" }
        switch identity.status {
        case .terminated: return "identity terminated"
        case .suspended: return "identity suspended"
        case .active: break
        }
        if let exception = AccessException.id(fromPolicy: justified.lineage.policy) {
            return "exception \(exception) ended"
        }
        guard let policy = policySet.policies.first(where: { $0.id == justified.lineage.policy }) else {
            return "policy \(justified.lineage.policy) removed"
        }
        if !policy.when.holds(for: identity) {
            return "policy \(policy.id) no longer matches: \(policy.when.summary)"
        }
        return "policy \(policy.id) no longer derives this grant"
    }
}
