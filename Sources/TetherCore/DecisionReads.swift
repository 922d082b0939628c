import Foundation

/// The store as one read transaction sees it: what deciding a change reads, answered
/// synchronously and all from the same state.
///
/// Obtained from the store's `inspect` and valid only inside its closure. The engine decides a
/// change from it alone (the inspect step of inspect → decide → commit); under the engine's
/// gate nothing else writes, so what it read still holds when the decision commits.
public protocol DecisionReads {
    /// The status recorded for event `id`, if it was seen before.
    func eventStatus(id: String) throws -> EventStatus?
    /// Event `id` as it was recorded, if it was seen before.
    func event(id: String) throws -> LifecycleEvent?
    /// Identities that may be the person `facts` describe: linked to the same key in
    /// `source`, or sharing an employee number, an email or a userName, ordered by id.
    func correlationCandidates(for facts: IdentityFacts, from source: Source) throws -> [Identity]
    /// The identity linked to `externalId` in `source`.
    func identity(source: Source, externalId: String) throws -> Identity?
    /// The identity a userName names: the active one when several records share it.
    func identity(userName: String) throws -> Identity?
    /// The identity with this id.
    func identity(id: IdentityID) throws -> Identity?
    /// Identities with `status` (all when nil), ordered by userName and id.
    func identities(status: IdentityStatus?) throws -> [Identity]
    /// Calls `body` with every identity, one at a time, in the order of
    /// ``identities(status:)`` with no status: what reads a whole directory without holding it.
    func eachIdentity(_ body: (Identity) throws -> Void) throws
    /// Every identity's id, userName and status, in the order of ``identities(status:)``
    /// with no status; read without the rest of each identity.
    func identitySummaries() throws -> [IdentitySummary]
    /// Calls `body` with every identity in the order of ``identities(status:)`` with no
    /// status, in consecutive batches, as planning reads them: each source's facts reduced to
    /// their `version`, which is all lineage records of them. A full reconciliation never
    /// holds every identity at once, and decodes each batch on several threads.
    func planningIdentities(_ body: (IdentityBatch) throws -> Void) throws
    /// Every agent's recorded state, by agent id.
    func agentStates() throws -> [String: AgentState]
    /// The agents registered at runtime (SCIM, operators; SPEC §15), disabled ones included,
    /// in the order they were registered. Agents declared in configuration are not here.
    func registeredAgents() throws -> [Agent]
    /// Grants whose subject is one of `subjects` or whose agent is one of `agents`, each
    /// once, in grant order.
    func grants(subjects: Set<String>, agents: Set<String>) throws -> [StoredGrant]
    /// How many grants the store holds.
    func grantCount() throws -> Int
    /// The keys of every grant, read without their lineage.
    func grantKeys() throws -> GrantKeyTable
    /// The grants with these ids, in grant order; ids with no grant are skipped.
    func grants(ids: [String]) throws -> [StoredGrant]
    /// The held plans of one scope, oldest first.
    func heldPlans(scope: PlanScope) throws -> [RecordedPlan]
    /// Plan `id` as recorded.
    func plan(id: String) throws -> RecordedPlan?
    /// `source`'s revocation window as last committed.
    func revocationWindow(_ source: Source) throws -> RevocationWindow?
    /// What Tether remembers of a source: its health and its resume point.
    func sourceState(_ source: Source) throws -> SourceState?
    /// The exceptions in force whose subject is one of `subjects` (every one when nil), in
    /// the order they were made.
    func exceptions(subjects: Set<String>?) throws -> [AccessException]
    /// Access review campaign `id` (SPEC §18).
    func reviewCampaign(id: String) throws -> ReviewCampaign?
    /// Every review campaign, newest first.
    func reviewCampaigns() throws -> [ReviewCampaign]
    /// A campaign's items in number order; with `reviewer`, only those that reviewer answers for.
    func reviewItems(campaign: String, reviewer: String?) throws -> [ReviewItem]
    /// Item `number` of a campaign.
    func reviewItem(campaign: String, number: Int) throws -> ReviewItem?
}

/// An identity's id, userName and status, read without the rest of it.
public struct IdentitySummary: Sendable, Hashable {
    public var id: IdentityID
    public var userName: String
    public var status: IdentityStatus

    public init(id: IdentityID, userName: String, status: IdentityStatus) {
        self.id = id
        self.userName = userName
        self.status = status
    }
}

/// Consecutive identities as a store read them, each decoded on demand: decoding is most of
/// the cost of a full reconciliation's read, and the identities of a batch can be decoded on
/// several threads at once.
public struct IdentityBatch: Sendable {
    /// How many identities the batch holds.
    public let count: Int
    private let decode: @Sendable (Int) throws -> Identity

    /// A batch of `count` identities; `decode` gives the one at an offset, and may be called
    /// from several threads at once.
    public init(count: Int, decode: @escaping @Sendable (Int) throws -> Identity) {
        self.count = count
        self.decode = decode
    }

    /// A batch of identities already decoded.
    public init(_ identities: [Identity]) {
        self.init(count: identities.count) { identities[$0] }
    }

    /// The identity at `offset` (0 ..< count).
    public func identity(at offset: Int) throws -> Identity { try decode(offset) }
}
