/// Decides whether an agent may hold grants, from the liveness of its sponsor (SPEC §5).
public enum Sponsorship {
    /// The agent's next state given its previous state and what is known of its sponsor.
    ///
    /// - Parameters:
    ///   - sponsor: the identity whose userName is the effective sponsor, if known.
    ///   - manager: that sponsor's manager, if known (for `transfer-to-manager`).
    public static func decide(
        _ agent: Agent, previous: AgentState?, sponsor: Identity?, manager: Identity?
    ) -> AgentState {
        let override = previous?.sponsorOverride
        let sponsorName = override ?? agent.sponsor
        if let previous, previous.awaitsOperator {
            return previous
        }
        guard let sponsor else {
            return AgentState(
                agent: agent.id, sponsorOverride: override, quarantined: true,
                reason: "sponsor \(sponsorName) is not a known identity")
        }
        guard sponsor.status == .active else {
            let transfer = agent.onSponsorLeave == .transferToManager
            return AgentState(
                agent: agent.id, sponsorOverride: override, quarantined: true,
                reason: "sponsor \(sponsorName) \(sponsor.status.rawValue)",
                proposedSponsor: transfer ? manager?.userName : nil,
                awaitsOperator: transfer)
        }
        return AgentState(agent: agent.id, sponsorOverride: override, quarantined: false)
    }

    /// The sponsor's userName in force for `agent`.
    public static func effectiveSponsor(of agent: Agent, state: AgentState?) -> String {
        state?.sponsorOverride ?? agent.sponsor
    }
}
