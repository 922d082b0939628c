import Foundation
import TetherCore
import TetherStore

/// What a decision reads, held in memory: a second answer to ``DecisionReads`` beside the
/// store's, so that a decision can be taken with no store at all.
struct MemoryReads: DecisionReads, Sendable {
    var identities: [Identity] = []
    var grants: [StoredGrant] = []
    var states: [String: AgentState] = [:]
    var events: [String: (LifecycleEvent, EventStatus)] = [:]
    var plans: [RecordedPlan] = []
    var windows: [Source: RevocationWindow] = [:]
    var sources: [Source: SourceState] = [:]
    /// Exceptions in the order they were made.
    var exceptions: [AccessException] = []
    /// Registered agents in the order they were registered.
    var registered: [Agent] = []
    var campaigns: [ReviewCampaign] = []
    var items: [ReviewItem] = []

    /// A copy of everything `store` holds that a decision reads, but its events: those the
    /// test names in `events`.
    static func copy(of store: some StateStore, events: [String] = []) async throws -> MemoryReads {
        var reads = MemoryReads()
        reads.identities = try await store.identities(status: nil)
        reads.grants = try await store.grants(subject: nil, agent: nil)
        reads.states = try await store.agentStates()
        for id in events {
            if let event = try await store.event(id: id), let status = try await store.eventStatus(id: id) {
                reads.events[id] = (event, status)
            }
        }
        reads.plans = try await store.plans(status: nil)
        for source in [Source.ldap, .scim, .hr] { reads.windows[source] = try await store.revocationWindow(source) }
        reads.sources = try await store.sourceStates()
        reads.exceptions = try await store.exceptions()
        reads.registered = try await store.registeredAgents()
        return reads
    }

    func eventStatus(id: String) throws -> EventStatus? { events[id]?.1 }

    func reviewCampaign(id: String) throws -> ReviewCampaign? { campaigns.first { $0.id == id } }

    func reviewCampaigns() throws -> [ReviewCampaign] { campaigns.reversed() }

    func reviewItems(campaign: String, reviewer: String?) throws -> [ReviewItem] {
        items.filter { $0.campaign == campaign && (reviewer.map($0.reviewers.contains) ?? true) }.sorted { $0.number < $1.number }
    }

    func reviewItem(campaign: String, number: Int) throws -> ReviewItem? {
        items.first { $0.campaign == campaign && $0.number == number }
    }

    func exceptions(subjects: Set<String>?) throws -> [AccessException] {
        exceptions.filter { subjects?.contains($0.subject) ?? true }
    }
    func event(id: String) throws -> LifecycleEvent? { events[id]?.0 }

    func correlationCandidates(for facts: IdentityFacts, from source: Source) throws -> [Identity] {
        identities.filter { identity in
            (facts.externalId != nil && identity.sources[source]?.externalId == facts.externalId)
                || (facts.employeeNumber != nil && identity.employeeNumber == facts.employeeNumber)
                || (facts.email != nil && identity.email?.lowercased() == facts.email?.lowercased())
                || (facts.userName != nil && identity.userName == facts.userName)
        }.sorted { $0.id < $1.id }
    }

    func identity(source: Source, externalId: String) throws -> Identity? {
        identities.first { $0.sources[source]?.externalId == externalId }
    }

    func identity(userName: String) throws -> Identity? {
        let named = identities.filter { $0.userName == userName }
        return named.first { $0.status == .active } ?? named.first
    }

    func identity(id: IdentityID) throws -> Identity? { identities.first { $0.id == id } }

    func identities(status: IdentityStatus?) throws -> [Identity] {
        identities.filter { status == nil || $0.status == status }.sorted { ($0.userName, $0.id) < ($1.userName, $1.id) }
    }

    func eachIdentity(_ body: (Identity) throws -> Void) throws {
        for identity in try identities(status: nil) { try body(identity) }
    }

    func identitySummaries() throws -> [IdentitySummary] {
        try identities(status: nil).map { IdentitySummary(id: $0.id, userName: $0.userName, status: $0.status) }
    }

    /// Planning's form: each source's facts reduced to their version.
    func planningIdentities(_ body: (IdentityBatch) throws -> Void) throws {
        try body(IdentityBatch(try identities(status: nil).map { identity in
            var planning = identity
            planning.sources = identity.sources.mapValues { IdentityFacts(status: nil, version: $0.version) }
            return planning
        }))
    }

    func agentStates() throws -> [String: AgentState] { states }

    func registeredAgents() throws -> [Agent] { registered }

    func grants(subjects: Set<String>, agents: Set<String>) throws -> [StoredGrant] {
        grants.filter { subjects.contains($0.grant.subject) || agents.contains($0.grant.agent) }.sorted { $0.grant < $1.grant }
    }

    func grantCount() throws -> Int { grants.count }
    func grantKeys() throws -> GrantKeyTable { GrantKeyTable(grants.map(\.grant.key)) }

    func grants(ids: [String]) throws -> [StoredGrant] {
        let wanted = Set(ids)
        return grants.filter { wanted.contains($0.id) }.sorted { $0.grant < $1.grant }
    }

    func heldPlans(scope: PlanScope) throws -> [RecordedPlan] {
        plans.filter { $0.status == .held && $0.plan.scope == scope }.sorted { $0.createdAt < $1.createdAt }
    }

    func plan(id: String) throws -> RecordedPlan? { plans.first { $0.plan.id == id } }
    func revocationWindow(_ source: Source) throws -> RevocationWindow? { windows[source] }
    func sourceState(_ source: Source) throws -> SourceState? { sources[source] }
}
