import Foundation

/// What a change to a registered agent did (SPEC §15).
public struct AgentOutcome: Sendable, Hashable {
    /// The agent as registered after the change; as it was, for a deletion.
    public var agent: Agent
    /// The audit action recorded: `agent.registered`, `agent.updated`, `agent.disabled` or
    /// `agent.deleted`.
    public var action: AuditAction
    /// What the change did to the agent's grants and quarantine, committed with it.
    public var plan: Plan
    /// The audit seq of the commit's last record: the revision that shows the change
    /// (`Tether-Revision`, a SCIM `meta.version`); nil before it is committed.
    public var revision: Int?

    public init(agent: Agent, action: AuditAction, plan: Plan, revision: Int? = nil) {
        self.agent = agent
        self.action = action
        self.plan = plan
        self.revision = revision
    }
}

/// What a registered agent's registration must be, whoever registers it.
public enum AgentRegistration {
    /// Whether `text` may be an agent id: letters, digits, `.`, `_`, `:` and `-`, starting
    /// with a letter or digit (as configuration ids).
    public static func isValidID(_ text: String) -> Bool {
        guard let first = text.unicodeScalars.first, first.isASCII, first.properties.isAlphabetic || ("0"..."9").contains(first)
        else { return false }
        return text.unicodeScalars.allSatisfy { scalar in
            scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar) || "._:-".unicodeScalars.contains(scalar))
        }
    }

    /// What is wrong with `agent` as a registration, each problem a sentence naming the
    /// field; empty when it is valid. Sponsors need not be known identities here.
    public static func problems(of agent: Agent) -> [String] {
        var problems: [String] = []
        if !isValidID(agent.id) {
            problems.append(
                "agent id '\(agent.id)' is not valid; use letters, digits, '.', '_', ':' and '-', starting with a letter or digit")
        }
        if agent.sponsors.isEmpty {
            problems.append("agent \(agent.id) names no sponsor; name at least one accountable person's userName")
        }
        for sponsor in agent.sponsors where sponsor.isEmpty || sponsor.contains(where: \.isWhitespace) {
            problems.append("sponsor '\(sponsor)' of agent \(agent.id) is not a userName (empty or with spaces)")
        }
        var seen = Set<String>()
        for sponsor in agent.sponsors where !seen.insert(sponsor).inserted {
            problems.append("sponsor \(sponsor) is named twice for agent \(agent.id)")
        }
        if agent.kind == .delegated, !agent.grants.isEmpty {
            problems.append(
                "grants are only for autonomous agents; delegated agent \(agent.id) receives its grants from policies")
        }
        for grant in agent.grants {
            if grant.scopes.isEmpty {
                problems.append("a grant of agent \(agent.id) on \(grant.resource) names no scope")
            }
            for scope in grant.scopes where scope.isEmpty || scope.contains(where: \.isWhitespace) {
                problems.append("scope '\(scope)' of agent \(agent.id) is not valid; scopes are not empty and contain no spaces")
            }
            if grant.resource.isEmpty || grant.resource.contains("{") || grant.resource.contains("}") {
                problems.append(
                    "resource '\(grant.resource)' of agent \(agent.id) is not valid; an autonomous agent's grant names one "
                        + "fixed resource, without {field} placeholders")
            }
        }
        for (field, value) in [("displayName", agent.displayName), ("description", agent.description), ("agentType", agent.agentType)] {
            if let value, value.count > 1_024 {
                problems.append("\(field) of agent \(agent.id) is longer than 1024 characters")
            }
        }
        return problems
    }
}

extension Decider {
    /// Decides a change to registered agent `agent`: its registration (the audit record
    /// `action` names), its quarantine and its grants, as one changeset, never held (an
    /// explicit change, like a leaver). This decider's policy set already holds the registry
    /// as the change leaves it: a disabled or deleted agent is not in it, so its grants are
    /// revoked.
    ///
    /// - Parameters:
    ///   - sponsorsChanged: the change names the agent's sponsors anew: an operator's override
    ///     and a wait for an operator (`transfer-to-manager`) end.
    ///   - enabled: the change makes a disabled agent active again.
    package func agentChange(
        _ action: AuditAction, agent: Agent, sponsorsChanged: Bool, enabled: Bool = false, actor: Actor, now: Date,
        reads: any DecisionReads
    ) throws -> Decision<AgentOutcome> {
        // `agents.minSponsors` holds for a new agent, new sponsors and an agent enabled again;
        // a change of its other fields (or disabling it) is never refused for want of sponsors.
        if agent.active, action == .agentRegistered || sponsorsChanged || enabled {
            try checkSponsors(of: agent, reads: reads)
        }
        var previous = try reads.agentStates()
        var cleared: AgentState?
        if action == .agentRegistered {
            // A new agent starts afresh, whatever an earlier agent of that id left behind.
            previous[agent.id] = nil
        } else if sponsorsChanged, var state = previous[agent.id] {
            state.sponsorOverride = nil
            state.awaitsOperator = false
            state.proposedSponsor = nil
            previous[agent.id] = state
            cleared = state
        }
        var (plan, view) = try agentPlan(agent.id, previous: previous, origin: .other, reads: reads)
        plan.held = nil
        var changeset = Changeset(time: now)
        if action == .agentDeleted {
            changeset.deletedAgents = [agent.id]
        } else {
            changeset.registeredAgents = [agent]
        }
        changeset.audit.append(AuditEntry(
            action: action, actor: actor, time: now, fields: Self.registryFields(agent, action: action)))
        var states = view.changed
        if let cleared, action != .agentDeleted, !states.contains(where: { $0.agent == cleared.agent }) {
            states.append(cleared)
        }
        add(plan, agentStates: states, to: &changeset, actor: actor, event: nil)
        return Decision(outcome: AgentOutcome(agent: agent, action: action, plan: plan), changeset: changeset)
    }

    /// Refuses `agent` when fewer than `agents.minSponsors` of its sponsors are active
    /// identities, naming those that do not count and why.
    package func checkSponsors(of agent: Agent, reads: any DecisionReads) throws {
        let needed = configuration.minSponsors
        var active = 0
        var absent: [String] = []
        for name in agent.sponsors {
            let sponsor = Sponsorship.Sponsor(userName: name, identity: try reads.identity(userName: name))
            if sponsor.isActive { active += 1 } else { absent.append(sponsor.absence ?? name) }
        }
        guard active < needed else { return }
        let plural = needed == 1 ? "sponsor that is an active identity" : "sponsors that are active identities"
        var message =
            "agent \(agent.id) needs at least \(needed) \(plural) (agents.minSponsors); "
            + "\(active) of \(agent.sponsors.count) named \(active == 1 ? "is" : "are")"
        if !absent.isEmpty { message += " (\(absent.joined(separator: ", ")))" }
        throw EngineError(.tooFewSponsors, message)
    }

    /// The fields of a registry change's audit record.
    static func registryFields(_ agent: Agent, action: AuditAction) -> [String: String] {
        var fields = [
            "agent": agent.id, "kind": agent.kind.rawValue, "sponsors": agent.sponsors.joined(separator: ","),
            "source": agent.source.rawValue, "active": agent.active ? "true" : "false",
        ]
        if let displayName = agent.displayName { fields["displayName"] = displayName }
        if let agentType = agent.agentType { fields["agentType"] = agentType }
        fields["reason"] =
            switch action {
            case .agentRegistered: "agent registered by \(agent.source.rawValue)"
            case .agentDisabled: "agent disabled: every grant revoked"
            case .agentDeleted: "agent deleted: every grant revoked"
            default: "agent registration changed"
            }
        return fields
    }
}
