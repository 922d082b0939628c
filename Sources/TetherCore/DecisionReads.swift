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
    /// Every agent's recorded state, by agent id.
    func agentStates() throws -> [String: AgentState]
    /// Grants whose subject is one of `subjects` or whose agent is one of `agents`, each
    /// once, in grant order.
    func grants(subjects: Set<String>, agents: Set<String>) throws -> [StoredGrant]
    /// How many grants the store holds.
    func grantCount() throws -> Int
    /// The held plans of one scope, oldest first.
    func heldPlans(scope: PlanScope) throws -> [RecordedPlan]
    /// Plan `id` as recorded.
    func plan(id: String) throws -> RecordedPlan?
    /// `source`'s revocation window as last committed.
    func revocationWindow(_ source: Source) throws -> RevocationWindow?
    /// What Tether remembers of a source: its health and its resume point.
    func sourceState(_ source: Source) throws -> SourceState?
}
