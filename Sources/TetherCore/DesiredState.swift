/// Derives the grants policy says should exist (SPEC §4, §5).
///
/// Only active identities receive grants, and only through agents that are not quarantined.
/// Exceptions (SPEC §17) add grants no policy gives and keep grants a deny covers from a person.
public struct DesiredState: Sendable {
    public let policySet: PolicySet
    /// The exceptions in force.
    public let exceptions: ExceptionSet

    public init(policySet: PolicySet, exceptions: ExceptionSet = ExceptionSet()) {
        self.policySet = policySet
        self.exceptions = exceptions
    }

    /// The grants `identity` should hold through every policy, keyed by grant id.
    /// When several policies derive the same grant, the first in configuration order is its lineage.
    public func grants(for identity: Identity, activeAgents: Set<String>) -> [String: JustifiedGrant] {
        var result: [String: JustifiedGrant] = [:]
        visitGrants(of: identity, activeAgents: activeAgents) { grant, key, lineage in
            let id = key.id
            guard result[id] == nil else { return }
            result[id] = JustifiedGrant(grant: grant, lineage: lineage())
        }
        return result
    }

    /// Calls `visit` with every grant `identity` should hold, in policy order (a grant may come
    /// more than once), its key, and a function that builds its lineage only when asked.
    func visitGrants(
        of identity: Identity, activeAgents: Set<String>, _ visit: (Grant, GrantKey, () -> Lineage) -> Void
    ) {
        visitGrants(of: identity, active: ActivePolicies(policySet, activeAgents: activeAgents), visit)
    }

    func visitGrants(
        of identity: Identity, active: ActivePolicies, _ visit: (Grant, GrantKey, () -> Lineage) -> Void
    ) {
        guard identity.status == .active else { return }
        // Built once per identity and shared (copy on write) by every lineage that needs them.
        var sourceFacts: (versions: [String: String], events: [String: String])?
        // Looked up once per identity: almost everyone has no exception, and then a grant
        // costs nothing more.
        let denies = exceptions.denies.isEmpty ? nil : exceptions.denies[identity.userName]
        for (policy, templates) in active.policies {
            var facts: [String] = []
            guard policy.when.evaluate(identity, facts: &facts) else { continue }
            for (template, resourceTemplate) in templates {
                for (resource, resourceFacts) in ResourceTemplate.expand(resourceTemplate, for: identity) {
                    for scope in template.scopes {
                        let grant = Grant(subject: identity.userName, agent: template.agent, scope: scope, resource: resource)
                        if let denies, denies.contains(where: { $0.covers(grant) }) { continue }
                        visit(grant, grant.key) {
                            if sourceFacts == nil { sourceFacts = Self.sourceFacts(of: identity) }
                            return Lineage(
                                policy: policy.id, policySet: policySet.hash, identity: identity.id,
                                facts: resourceFacts.isEmpty ? facts : facts + resourceFacts.filter { !facts.contains($0) },
                                versions: sourceFacts!.versions, events: sourceFacts!.events)
                        }
                    }
                }
            }
        }
        guard !exceptions.grants.isEmpty else { return }
        for exception in exceptions.grants[identity.userName] ?? [] where active.agents.contains(exception.agent) {
            let grant = exception.grant
            if let denies, denies.contains(where: { $0.covers(grant) }) { continue }
            visit(grant, grant.key) { exception.lineage(policySet: policySet.hash, identity: identity.id) }
        }
    }

    /// The declared grants of autonomous agents that are not quarantined.
    public func autonomousGrants(activeAgents: Set<String>) -> [String: JustifiedGrant] {
        var result: [String: JustifiedGrant] = [:]
        for agent in policySet.agents where agent.kind == .autonomous && activeAgents.contains(agent.id) {
            for declared in agent.grants {
                for scope in declared.scopes {
                    let grant = Grant(subject: agent.subject, agent: agent.id, scope: scope, resource: declared.resource)
                    if exceptions.deny(of: grant) != nil { continue }
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

    private static func sourceFacts(of identity: Identity) -> (versions: [String: String], events: [String: String]) {
        var versions: [String: String] = [:]
        for (source, sourceFacts) in identity.sources { versions[source.rawValue] = sourceFacts.version }
        var events: [String: String] = [:]
        for (source, event) in identity.lastEvents { events[source.rawValue] = event }
        return (versions, events)
    }
}

/// The policies that can grant anything while some agents are active (not quarantined), each
/// with the templates of those agents: worked out once for a whole reconciliation instead of
/// once for every identity.
public struct ActivePolicies: Sendable {
    /// Each policy with the templates of active agents and their resources, parsed with the
    /// policy set.
    let policies: [(policy: Policy, templates: [(GrantTemplate, ResourceTemplate.Parsed)])]
    /// The agents that may hold grants: a grant exception gives one only through these.
    let agents: Set<String>

    public init(_ policySet: PolicySet, activeAgents: Set<String>) {
        agents = activeAgents
        policies = zip(policySet.policies, policySet.resourceTemplates).compactMap { policy, resources in
            let templates = zip(policy.grant, resources).filter { activeAgents.contains($0.0.agent) }
            return templates.isEmpty ? nil : (policy, templates)
        }
    }
}

/// A full reconciliation's diff, built one identity at a time against the keys of the grants
/// that exist, so that neither the desired grants nor the stored lineage are held in memory
/// at once: only the grants to add carry their lineage.
public struct DesiredDiff: Sendable {
    /// The keys of every grant that exists.
    public let actual: GrantKeyTable
    /// Desired grants that do not exist, with the lineage of the first identity (and policy)
    /// that derives them.
    public private(set) var missing: [GrantKey: JustifiedGrant] = [:]
    /// Existing grants that are desired, by their slot in ``actual``.
    private var kept: SlotBits

    public init(actual: GrantKeyTable) {
        self.actual = actual
        kept = SlotBits(slots: actual.slotCount)
    }

    /// The existing grants that are not desired.
    public var unwanted: [GrantKey] { kept.count == actual.count ? [] : actual.keys(notMarkedIn: kept) }

    /// Desired grants that do not exist, keyed by grant id as ``Reconciler/plan`` takes them.
    public var missingByID: [String: JustifiedGrant] {
        Dictionary(uniqueKeysWithValues: missing.map { ($0.key.id, $0.value) })
    }

    /// Adds what `later` found, which came after everything in this diff: a grant both
    /// found missing keeps this diff's lineage.
    public mutating func merge(_ later: DesiredDiff) {
        kept.formUnion(later.kept)
        missing.merge(later.missing) { first, _ in first }
    }

    mutating func add(_ grant: Grant, key: GrantKey, lineage: () -> Lineage) {
        if let slot = actual.slot(of: key) {
            kept.insert(slot)
        } else if missing[key] == nil {
            missing[key] = JustifiedGrant(grant: grant, lineage: lineage())
        }
    }
}

extension DesiredState {
    /// Adds the autonomous agents' own grants to `diff`; they come before any identity's.
    public func addAutonomousGrants(activeAgents: Set<String>, to diff: inout DesiredDiff) {
        // Sorted, so that which duplicate wins does not depend on hashing order.
        for (_, justified) in autonomousGrants(activeAgents: activeAgents).sorted(by: { $0.key < $1.key }) {
            diff.add(justified.grant, key: justified.grant.key) { justified.lineage }
        }
    }

    /// Adds the grants `identity` should hold to `diff`; the first identity to derive a grant
    /// gives it its lineage, as in ``compute(identities:activeAgents:)``.
    public func addGrants(of identity: Identity, activeAgents: Set<String>, to diff: inout DesiredDiff) {
        addGrants(of: identity, active: ActivePolicies(policySet, activeAgents: activeAgents), to: &diff)
    }

    /// ``addGrants(of:activeAgents:to:)`` with the active policies worked out once by the
    /// caller, for many identities.
    public func addGrants(of identity: Identity, active: ActivePolicies, to diff: inout DesiredDiff) {
        visitGrants(of: identity, active: active) { grant, key, lineage in
            diff.add(grant, key: key, lineage: lineage)
        }
    }
}
