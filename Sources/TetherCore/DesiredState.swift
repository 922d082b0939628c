/// Derives the grants policy says should exist (SPEC §4, §5).
///
/// Only active identities receive grants, and only through agents that are not quarantined.
public struct DesiredState: Sendable {
    public let policySet: PolicySet

    public init(policySet: PolicySet) { self.policySet = policySet }

    /// The grants `identity` should hold through every policy, keyed by grant id.
    /// When several policies derive the same grant, the first in configuration order is its lineage.
    public func grants(for identity: Identity, activeAgents: Set<String>) -> [String: JustifiedGrant] {
        guard identity.status == .active else { return [:] }
        var result: [String: JustifiedGrant] = [:]
        for policy in policySet.policies {
            let templates = policy.grant.filter { activeAgents.contains($0.agent) }
            guard !templates.isEmpty else { continue }
            var facts: [String] = []
            guard policy.when.evaluate(identity, facts: &facts) else { continue }
            for template in templates {
                for (resource, resourceFacts) in ResourceTemplate.expand(template.resource, for: identity) {
                    for scope in template.scopes {
                        let grant = Grant(subject: identity.userName, agent: template.agent, scope: scope, resource: resource)
                        let id = grant.id
                        guard result[id] == nil else { continue }
                        result[id] = JustifiedGrant(
                            grant: grant, lineage: lineage(policy.id, identity, facts + resourceFacts.filter { !facts.contains($0) }))
                    }
                }
            }
        }
        return result
    }

    /// The declared grants of autonomous agents that are not quarantined.
    public func autonomousGrants(activeAgents: Set<String>) -> [String: JustifiedGrant] {
        var result: [String: JustifiedGrant] = [:]
        for agent in policySet.agents where agent.kind == .autonomous && activeAgents.contains(agent.id) {
            for declared in agent.grants {
                for scope in declared.scopes {
                    let grant = Grant(subject: agent.subject, agent: agent.id, scope: scope, resource: declared.resource)
                    result[grant.id] = JustifiedGrant(
                        grant: grant,
                        lineage: Lineage(policy: "agent:\(agent.id)", policySet: policySet.hash, facts: ["sponsor active"]))
                }
            }
        }
        return result
    }

    /// Every desired grant for `identities`, plus the autonomous agents' own.
    public func compute(identities: some Sequence<Identity>, activeAgents: Set<String>) -> [String: JustifiedGrant] {
        var result = autonomousGrants(activeAgents: activeAgents)
        for identity in identities {
            result.merge(grants(for: identity, activeAgents: activeAgents)) { first, _ in first }
        }
        return result
    }

    private func lineage(_ policy: String, _ identity: Identity, _ facts: [String]) -> Lineage {
        var versions: [String: String] = [:]
        for (source, sourceFacts) in identity.sources { versions[source.rawValue] = sourceFacts.version }
        var events: [String: String] = [:]
        for (source, event) in identity.lastEvents { events[source.rawValue] = event }
        return Lineage(
            policy: policy, policySet: policySet.hash, identity: identity.id, facts: facts,
            versions: versions, events: events)
    }
}
