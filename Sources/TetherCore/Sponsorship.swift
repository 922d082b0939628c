/// Decides whether an agent may hold grants, from the liveness of its sponsors (SPEC §5, §15):
/// it keeps them while at least one sponsor is an active identity.
public enum Sponsorship {
    /// One sponsor as the decision sees it: the userName named and the identity it names now.
    public struct Sponsor: Sendable, Hashable {
        public var userName: String
        /// The identity the userName names, if known.
        public var identity: Identity?
        /// That identity's manager, if known and asked for (`transfer-to-manager`).
        public var manager: Identity?

        public init(userName: String, identity: Identity?, manager: Identity? = nil) {
            self.userName = userName
            self.identity = identity
            self.manager = manager
        }

        /// Whether the sponsor is an active identity.
        public var isActive: Bool { identity?.status == .active }

        /// Why the sponsor does not count, or nil when it is active.
        var absence: String? {
            guard let identity else { return "\(userName) is not a known identity" }
            return identity.status == .active ? nil : "\(userName) \(identity.status.rawValue)"
        }
    }

    /// The agent's next state given its previous state and what is known of its sponsors
    /// (the effective ones, ``effectiveSponsors(of:state:)``, in that order).
    public static func decide(_ agent: Agent, previous: AgentState?, sponsors: [Sponsor]) -> AgentState {
        let override = previous?.sponsorOverride
        if let previous, previous.awaitsOperator {
            return previous
        }
        if sponsors.contains(where: \.isActive) {
            return AgentState(agent: agent.id, sponsorOverride: override, quarantined: false)
        }
        let reason: String
        switch sponsors.count {
        case 0: reason = "agent has no sponsor"
        case 1: reason = sponsors[0].identity == nil ? "sponsor \(sponsors[0].userName) is not a known identity" : "sponsor \(sponsors[0].absence!)"
        default: reason = "no sponsor is active: " + sponsors.compactMap(\.absence).joined(separator: ", ")
        }
        let left = sponsors.contains { $0.identity != nil }
        guard left else {
            return AgentState(agent: agent.id, sponsorOverride: override, quarantined: true, reason: reason)
        }
        let transfer = agent.onSponsorLeave == .transferToManager
        return AgentState(
            agent: agent.id, sponsorOverride: override, quarantined: true, reason: reason,
            proposedSponsor: transfer ? sponsors.lazy.compactMap(\.manager?.userName).first : nil,
            awaitsOperator: transfer)
    }

    /// The agent's next state from one sponsor: ``decide(_:previous:sponsors:)`` with that one.
    public static func decide(
        _ agent: Agent, previous: AgentState?, sponsor: Identity?, manager: Identity?
    ) -> AgentState {
        let name = effectiveSponsors(of: agent, state: previous).first ?? ""
        return decide(agent, previous: previous, sponsors: [Sponsor(userName: name, identity: sponsor, manager: manager)])
    }

    /// The sponsors' userNames in force for `agent`: the operator's override when there is
    /// one, else the agent's own.
    public static func effectiveSponsors(of agent: Agent, state: AgentState?) -> [String] {
        state?.sponsorOverride.map { [$0] } ?? agent.sponsors
    }

    /// The first sponsor in force for `agent`.
    public static func effectiveSponsor(of agent: Agent, state: AgentState?) -> String {
        effectiveSponsors(of: agent, state: state).first ?? ""
    }
}
