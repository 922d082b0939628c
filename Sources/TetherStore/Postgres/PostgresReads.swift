import Foundation
import PostgresNIO
import TetherCore

extension PostgresStateStore {
    /// A failed read is a store failure; an error the decision itself throws (a refused
    /// event) reaches the caller as thrown.
    public func inspect<T: Sendable>(_ body: @escaping @Sendable (any DecisionReads) throws -> T) async throws -> T {
        let decided: Result<T, any Error> = try await read { session in
            do {
                return .success(try body(PostgresReads(session: session)))
            } catch let error as StoreError {
                throw error
            } catch let error as PSQLError {
                throw error
            } catch {
                return .failure(error)
            }
        }
        return try decided.get()
    }
}

/// The store as one read transaction sees it, in PostgreSQL. The store's own single reads of
/// the same things run these, each in a transaction of its own.
struct PostgresReads: DecisionReads {
    typealias Store = PostgresStateStore
    let session: PostgresSession

    func eventStatus(id: String) throws -> EventStatus? {
        try session.value(String.self, "SELECT status FROM events WHERE id = ?", [id]).flatMap(EventStatus.init)
    }

    func event(id: String) throws -> LifecycleEvent? {
        try session.value(String.self, "SELECT payload FROM events WHERE id = ?", [id])
            .map { try Store.decode(LifecycleEvent.self, $0, what: "event \(id)") }
    }

    func correlationCandidates(for facts: IdentityFacts, from source: Source) throws -> [Identity] {
        let rows = try session.column(
            String.self,
            """
            SELECT data FROM identities WHERE id IN (
                SELECT identity FROM identity_links WHERE source = ? AND externalId = ?
                UNION SELECT id FROM identities WHERE employeeNumber = ?
                UNION SELECT id FROM identities WHERE emailLower = ?
                UNION SELECT id FROM identities WHERE userName = ?)
            ORDER BY id
            """,
            [source.rawValue, facts.externalId, facts.employeeNumber, facts.email?.lowercased(), facts.userName])
        return try rows.map { try Store.identity($0, what: "identity") }
    }

    func identity(source: Source, externalId: String) throws -> Identity? {
        try session.value(
            String.self,
            """
            SELECT i.data FROM identity_links l JOIN identities i ON i.id = l.identity
            WHERE l.source = ? AND l.externalId = ?
            """,
            [source.rawValue, externalId]
        ).map { try Store.identity($0, what: "identity linked to \(source) \(externalId)") }
    }

    func identity(userName: String) throws -> Identity? {
        try session.value(
            String.self, "SELECT data FROM identities WHERE userName = ? ORDER BY status = 'active' DESC, id LIMIT 1", [userName]
        ).map { try Store.identity($0, what: "identity \(userName)") }
    }

    func identity(id: IdentityID) throws -> Identity? {
        try session.value(String.self, "SELECT data FROM identities WHERE id = ?", [id])
            .map { try Store.identity($0, what: "identity \(id)") }
    }

    func identities(status: IdentityStatus?) throws -> [Identity] {
        var identities: [Identity] = []
        try readIdentities(status: status) { identities.append($0) }
        return identities
    }

    func eachIdentity(_ body: (Identity) throws -> Void) throws { try readIdentities(status: nil, body) }

    private func readIdentities(status: IdentityStatus?, _ body: (Identity) throws -> Void) throws {
        // In batches, sharing repeated values: the stored texts are never all held at once,
        // nor a copy of every group list for each identity.
        let sharing = IdentityValues()
        let (sql, arguments): (String, [any PostgresArgument]) =
            if let status {
                ("SELECT data FROM identities WHERE status = ? ORDER BY userName, id", [status.rawValue])
            } else {
                ("SELECT data FROM identities ORDER BY userName, id", [])
            }
        try session.batches(sql, arguments) { rows in
            for row in rows { try body(try Store.identity(try row.get(0), what: "identity", sharing: sharing)) }
        }
    }

    func identitySummaries() throws -> [IdentitySummary] {
        var summaries: [IdentitySummary] = []
        try session.batches("SELECT id, userName, status FROM identities ORDER BY userName, id") { rows in
            for row in rows {
                let (id, userName, status) = (try row.get(0, as: String.self), try row.get(1, as: String.self), try row.get(2, as: String.self))
                guard let known = IdentityStatus(rawValue: status) else {
                    throw StoreError(.corrupt, "identity \(id) has an unknown status \(status)")
                }
                summaries.append(IdentitySummary(id: id, userName: userName, status: known))
            }
        }
        return summaries
    }

    func planningIdentities(_ body: (IdentityBatch) throws -> Void) throws {
        try session.batches(
            "SELECT data FROM identities ORDER BY userName, id", size: SQLiteReads.planningBatch
        ) { rows in
            let texts = try rows.map { try $0.get(0, as: String.self) }
            try body(IdentityBatch(count: texts.count) { offset in
                let text = texts[offset]
                if let read = PlanningIdentity.read(text) { return read }
                return try Store.decode(PlanningIdentity.self, text, what: "identity").identity
            })
        }
    }

    func agentStates() throws -> [String: AgentState] {
        var states: [String: AgentState] = [:]
        for row in try session.query("SELECT agent, data FROM agent_states") {
            let (agent, text) = (try row.get(0, as: String.self), try row.get(1, as: String.self))
            states[agent] = try AgentState.read(text) ?? Store.decode(AgentState.self, text, what: "agent state \(agent)")
        }
        return states
    }

    func registeredAgents() throws -> [Agent] {
        let decoder = Store.decoder()
        return try session.query("SELECT id, data FROM registered_agents ORDER BY ord").map { row in
            let (id, text) = (try row.get(0, as: String.self), try row.get(1, as: String.self))
            return try Store.decode(Agent.self, text, what: "registered agent \(id)", with: decoder)
        }
    }

    func grants(subjects: Set<String>, agents: Set<String>) throws -> [StoredGrant] {
        guard !subjects.isEmpty || !agents.isEmpty else { return [] }
        let grants = try Store.fetchGrants(
            session, where: "subject = ANY(?) OR agent = ANY(?)", [Array(subjects), Array(agents)])
        return grants.sorted { $0.grant < $1.grant }
    }

    func grantCount() throws -> Int {
        try session.value(Int.self, "SELECT COUNT(*) FROM grants") ?? 0
    }

    func grantKeys() throws -> GrantKeyTable {
        var keys = GrantKeyTable(capacity: try grantCount())
        try session.batches("SELECT id FROM grants", size: 65_536) { rows in
            for row in rows {
                let id = try row.get(0, as: String.self)
                guard let key = GrantKey(id: id) else { throw StoreError(.corrupt, "stored grant id \(id) is malformed") }
                keys.insert(key)
            }
        }
        return keys
    }

    func grants(ids: [String]) throws -> [StoredGrant] {
        guard !ids.isEmpty else { return [] }
        return try Store.fetchGrants(session, where: "id = ANY(?)", [ids]).sorted { $0.grant < $1.grant }
    }

    func heldPlans(scope: PlanScope) throws -> [RecordedPlan] {
        try session.query(
            "SELECT \(Store.planColumns) FROM plans WHERE status = 'held' AND scope = ? ORDER BY createdAt, id", [scope.description]
        ).map(Store.recordedPlan)
    }

    func plan(id: String) throws -> RecordedPlan? {
        try session.query("SELECT \(Store.planColumns) FROM plans WHERE id = ?", [id]).first.map(Store.recordedPlan)
    }

    func revocationWindow(_ source: Source) throws -> RevocationWindow? {
        try session.value(String.self, "SELECT data FROM safety_windows WHERE source = ?", [source.rawValue])
            .map { try Store.decode(RevocationWindow.self, $0, what: "revocation window of \(source.rawValue)") }
    }

    func sourceState(_ source: Source) throws -> SourceState? {
        try session.query("SELECT cookie, data FROM source_states WHERE source = ?", [source.rawValue]).first
            .map(Store.decodedSourceState)
    }

    func exceptions(subjects: Set<String>?) throws -> [AccessException] {
        let decoder = Store.decoder()
        let rows: [String]
        if let subjects {
            guard !subjects.isEmpty else { return [] }
            rows = try session.column(String.self, "SELECT data FROM exceptions WHERE subject = ANY(?) ORDER BY ord", [Array(subjects)])
        } else {
            rows = try session.column(String.self, "SELECT data FROM exceptions ORDER BY ord")
        }
        return try rows.map { try Store.decode(AccessException.self, $0, what: "exception", with: decoder) }
    }

    func reviewCampaign(id: String) throws -> ReviewCampaign? {
        try session.value(String.self, "SELECT data FROM review_campaigns WHERE id = ?", [id])
            .map { try Store.decode(ReviewCampaign.self, $0, what: "review campaign \(id)") }
    }

    func reviewCampaigns() throws -> [ReviewCampaign] {
        let decoder = Store.decoder()
        return try session.column(String.self, "SELECT data FROM review_campaigns ORDER BY ord DESC").map {
            try Store.decode(ReviewCampaign.self, $0, what: "review campaign", with: decoder)
        }
    }

    func reviewItems(campaign: String, reviewer: String?) throws -> [ReviewItem] {
        let decoder = Store.decoder()
        let rows: [String]
        if let reviewer {
            rows = try session.column(
                String.self,
                """
                SELECT i.data FROM review_reviewers r
                JOIN review_items i ON i.campaign = r.campaign AND i.number = r.number
                WHERE r.campaign = ? AND r.reviewer = ? ORDER BY r.number
                """,
                [campaign, reviewer])
        } else {
            rows = try session.column(String.self, "SELECT data FROM review_items WHERE campaign = ? ORDER BY number", [campaign])
        }
        return try rows.map { try Store.decode(ReviewItem.self, $0, what: "review item of \(campaign)", with: decoder) }
    }

    func reviewItem(campaign: String, number: Int) throws -> ReviewItem? {
        try session.value(String.self, "SELECT data FROM review_items WHERE campaign = ? AND number = ?", [campaign, number])
            .map { try Store.decode(ReviewItem.self, $0, what: "review item \(campaign) #\(number)") }
    }
}

extension PostgresStateStore {
    static let grantColumns = "id, subject, agent, scope, resource, lineage, grantedAt, auditSeq"

    /// The grants `condition` selects, in no particular order.
    static func fetchGrants(_ session: PostgresSession, where condition: String, _ arguments: [any PostgresArgument]) throws
        -> [StoredGrant]
    {
        let decoder = Self.decoder()
        return try session.query("SELECT \(grantColumns) FROM grants WHERE \(condition)", arguments).map { row in
            let grant = Grant(
                subject: try row.get(1), agent: try row.get(2), scope: try row.get(3), resource: try row.get(4))
            let text: String = try row.get(5)
            let lineage = try Lineage.read(text) ?? decode(Lineage.self, text, what: "lineage of \(grant.id)", with: decoder)
            let grantedAt: String = try row.get(6)
            return StoredGrant(
                justified: JustifiedGrant(grant: grant, lineage: lineage),
                grantedAt: Timestamp.parse(grantedAt) ?? Date(timeIntervalSince1970: 0),
                auditSeq: try row.get(7, as: Int?.self))
        }
    }

    static let planColumns = "id, status, createdAt, resolvedBy, body, pendingIdentities"

    static func recordedPlan(_ row: PostgresRandomAccessRow) throws -> RecordedPlan {
        let createdAt: String = try row.get(2)
        return RecordedPlan(
            plan: try decode(Plan.self, try row.get(4), what: "plan"),
            status: PlanStatus(rawValue: try row.get(1)) ?? .held,
            createdAt: Timestamp.parse(createdAt) ?? Date(timeIntervalSince1970: 0),
            resolvedBy: try row.get(3, as: String?.self),
            pendingIdentities: try (try row.get(5, as: String?.self)).map {
                try decode([Identity].self, $0, what: "identities pending with a plan")
            } ?? [])
    }

    static func decodedSourceState(_ row: PostgresRandomAccessRow) throws -> SourceState {
        var state = try decode(SourceState.self, try row.get(1), what: "source state")
        state.cookie = try row.get(0, as: ByteBuffer?.self).map { Data($0.readableBytesView) }
        return state
    }
}
