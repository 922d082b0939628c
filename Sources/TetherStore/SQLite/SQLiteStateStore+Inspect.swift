import Foundation
import GRDB
import TetherCore

extension SQLiteStateStore {
    /// A failed read is a store failure; an error the decision itself throws (a refused
    /// event) reaches the caller as thrown.
    public func inspect<T: Sendable>(_ body: @escaping @Sendable (any DecisionReads) throws -> T) async throws -> T {
        let decided: Result<T, any Error> = try await read { db in
            do {
                return .success(try body(SQLiteReads(db: db)))
            } catch let error as DatabaseError {
                throw error
            } catch let error as StoreError {
                throw error
            } catch {
                return .failure(error)
            }
        }
        return try decided.get()
    }
}

/// The store as one read transaction sees it. The store's own single reads of the same
/// things (``StateReading/identity(id:)`` and the rest) run these, each in a transaction of its own.
struct SQLiteReads: DecisionReads {
    let db: Database

    func eventStatus(id: String) throws -> EventStatus? {
        try String.fetchOne(db.cachedStatement(sql: "SELECT status FROM events WHERE id = ?"), arguments: [id])
            .flatMap(EventStatus.init)
    }

    func event(id: String) throws -> LifecycleEvent? {
        try String.fetchOne(db.cachedStatement(sql: "SELECT payload FROM events WHERE id = ?"), arguments: [id])
            .map { try SQLiteStateStore.decode(LifecycleEvent.self, $0, what: "event \(id)") }
    }

    func correlationCandidates(for facts: IdentityFacts, from source: Source) throws -> [Identity] {
        let rows = try String.fetchAll(
            db.cachedStatement(
                sql: """
                    SELECT data FROM identities WHERE id IN (
                        SELECT identity FROM identity_links WHERE source = ? AND externalId = ?
                        UNION SELECT id FROM identities WHERE employeeNumber = ?
                        UNION SELECT id FROM identities WHERE emailLower = ?
                        UNION SELECT id FROM identities WHERE userName = ?)
                    ORDER BY id
                    """),
            arguments: [
                source.rawValue, facts.externalId, facts.employeeNumber, facts.email?.lowercased(), facts.userName,
            ])
        return try rows.map { try SQLiteStateStore.identity($0, what: "identity") }
    }

    func identity(source: Source, externalId: String) throws -> Identity? {
        try String.fetchOne(
            db.cachedStatement(
                sql: """
                    SELECT i.data FROM identity_links l JOIN identities i ON i.id = l.identity
                    WHERE l.source = ? AND l.externalId = ?
                    """),
            arguments: [source.rawValue, externalId]
        ).map { try SQLiteStateStore.identity($0, what: "identity linked to \(source) \(externalId)") }
    }

    func identity(userName: String) throws -> Identity? {
        try String.fetchOne(
            db.cachedStatement(sql: "SELECT data FROM identities WHERE userName = ? ORDER BY status = 'active' DESC LIMIT 1"),
            arguments: [userName]
        ).map { try SQLiteStateStore.identity($0, what: "identity \(userName)") }
    }

    func identity(id: IdentityID) throws -> Identity? {
        try String.fetchOne(db.cachedStatement(sql: "SELECT data FROM identities WHERE id = ?"), arguments: [id])
            .map { try SQLiteStateStore.identity($0, what: "identity \(id)") }
    }

    func identities(status: IdentityStatus?) throws -> [Identity] {
        var identities: [Identity] = []
        try readIdentities(status: status) { identities.append($0) }
        return identities
    }

    func eachIdentity(_ body: (Identity) throws -> Void) throws { try readIdentities(status: nil, body) }

    private func readIdentities(status: IdentityStatus?, _ body: (Identity) throws -> Void) throws {
        // Read row by row, sharing repeated values: a hundred thousand stored texts are never
        // held at once, nor a copy of every group list for each identity.
        let rows =
            if let status {
                try String.fetchCursor(
                    db, sql: "SELECT data FROM identities WHERE status = ? ORDER BY userName, id", arguments: [status.rawValue])
            } else {
                try String.fetchCursor(db, sql: "SELECT data FROM identities ORDER BY userName, id")
            }
        let sharing = IdentityValues()
        while let text = try rows.next() { try body(try SQLiteStateStore.identity(text, what: "identity", sharing: sharing)) }
    }

    func identitySummaries() throws -> [IdentitySummary] {
        var summaries: [IdentitySummary] = []
        let rows = try Row.fetchCursor(db, sql: "SELECT id, userName, status FROM identities ORDER BY userName, id")
        while let row = try rows.next() {
            let status: String = row[2]
            guard let known = IdentityStatus(rawValue: status) else {
                throw StoreError(.corrupt, "identity \(row[0] as String) has an unknown status \(status)")
            }
            summaries.append(IdentitySummary(id: row[0], userName: row[1], status: known))
        }
        return summaries
    }

    /// Batches of this many stored texts: a few megabytes, enough for each core to fold a
    /// share of them while the next batch waits.
    static let planningBatch = 8_192

    func planningIdentities(_ body: (IdentityBatch) throws -> Void) throws {
        let rows = try String.fetchCursor(db, sql: "SELECT data FROM identities ORDER BY userName, id")
        var texts: [String] = []
        texts.reserveCapacity(Self.planningBatch)
        func flush() throws {
            let batch = texts
            texts.removeAll(keepingCapacity: true)
            try body(IdentityBatch(count: batch.count) { offset in
                let text = batch[offset]
                if let read = PlanningIdentity.read(text) { return read }
                return try SQLiteStateStore.decode(PlanningIdentity.self, text, what: "identity").identity
            })
        }
        while let text = try rows.next() {
            texts.append(text)
            if texts.count == Self.planningBatch { try flush() }
        }
        if !texts.isEmpty { try flush() }
    }

    func agentStates() throws -> [String: AgentState] {
        var states: [String: AgentState] = [:]
        for row in try Row.fetchAll(db.cachedStatement(sql: "SELECT agent, data FROM agent_states")) {
            let (agent, text): (String, String) = (row["agent"], row["data"])
            states[agent] = try AgentState.read(text) ?? SQLiteStateStore.decode(AgentState.self, text, what: "agent state \(agent)")
        }
        return states
    }

    func registeredAgents() throws -> [Agent] {
        let decoder = SQLiteStateStore.decoder()
        return try Row.fetchAll(db.cachedStatement(sql: "SELECT id, data FROM registered_agents ORDER BY rowid")).map { row in
            let (id, text): (String, String) = (row["id"], row["data"])
            return try SQLiteStateStore.decode(Agent.self, text, what: "registered agent \(id)", with: decoder)
        }
    }

    func grants(subjects: Set<String>, agents: Set<String>) throws -> [StoredGrant] {
        var grants: [String: StoredGrant] = [:]
        for subject in subjects {
            for grant in try SQLiteStateStore.fetchGrants(db, sql: "SELECT * FROM grants WHERE subject = ?", [subject]) {
                grants[grant.id] = grant
            }
        }
        for agent in agents {
            for grant in try SQLiteStateStore.fetchGrants(db, sql: "SELECT * FROM grants WHERE agent = ?", [agent]) {
                grants[grant.id] = grant
            }
        }
        return grants.values.sorted { $0.grant < $1.grant }
    }

    func grantCount() throws -> Int {
        try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM grants") ?? 0
    }

    func grantKeys() throws -> GrantKeyTable {
        var keys = GrantKeyTable(capacity: try grantCount())
        let ids = try String.fetchCursor(db, sql: "SELECT id FROM grants")
        while let id = try ids.next() {
            guard let key = GrantKey(id: id) else { throw StoreError(.corrupt, "stored grant id \(id) is malformed") }
            keys.insert(key)
        }
        return keys
    }

    func grants(ids: [String]) throws -> [StoredGrant] {
        var grants: [StoredGrant] = []
        var start = ids.startIndex
        while start < ids.endIndex {
            let chunk = ids[start..<min(start + 500, ids.endIndex)]
            let marks = Array(repeating: "?", count: chunk.count).joined(separator: ",")
            grants += try SQLiteStateStore.fetchGrants(
                db, sql: "SELECT * FROM grants WHERE id IN (\(marks))", StatementArguments(Array(chunk)), cached: false)
            start = chunk.endIndex
        }
        return grants.sorted { $0.grant < $1.grant }
    }

    func heldPlans(scope: PlanScope) throws -> [RecordedPlan] {
        try Row.fetchAll(
            db.cachedStatement(sql: "SELECT * FROM plans WHERE status = 'held' AND scope = ? ORDER BY createdAt, id"),
            arguments: [scope.description]
        ).map(SQLiteStateStore.recordedPlan)
    }

    func plan(id: String) throws -> RecordedPlan? {
        try Row.fetchOne(db.cachedStatement(sql: "SELECT * FROM plans WHERE id = ?"), arguments: [id])
            .map(SQLiteStateStore.recordedPlan)
    }

    func revocationWindow(_ source: Source) throws -> RevocationWindow? {
        try String.fetchOne(
            db.cachedStatement(sql: "SELECT data FROM safety_windows WHERE source = ?"), arguments: [source.rawValue]
        ).map { try SQLiteStateStore.decode(RevocationWindow.self, $0, what: "revocation window of \(source.rawValue)") }
    }

    func sourceState(_ source: Source) throws -> SourceState? {
        try Row.fetchOne(
            db.cachedStatement(sql: "SELECT cookie, data FROM source_states WHERE source = ?"), arguments: [source.rawValue]
        ).map(SQLiteStateStore.decodedSourceState)
    }

    func exceptions(subjects: Set<String>?) throws -> [AccessException] {
        let decoder = SQLiteStateStore.decoder()
        let rows: [String]
        if let subjects, subjects.count == 1 {
            // One person's change (a leaver): a statement prepared once.
            rows = try String.fetchAll(
                db.cachedStatement(sql: "SELECT data FROM exceptions WHERE subject = ? ORDER BY rowid"), arguments: [subjects.first!])
        } else if let subjects {
            guard !subjects.isEmpty else { return [] }
            rows = try String.fetchAll(
                db, sql: "SELECT data FROM exceptions WHERE subject IN (\(databaseQuestionMarks(count: subjects.count))) ORDER BY rowid",
                arguments: StatementArguments(Array(subjects)))
        } else {
            rows = try String.fetchAll(db.cachedStatement(sql: "SELECT data FROM exceptions ORDER BY rowid"))
        }
        return try rows.map { try SQLiteStateStore.decode(AccessException.self, $0, what: "exception", with: decoder) }
    }

    func reviewCampaign(id: String) throws -> ReviewCampaign? {
        try String.fetchOne(db.cachedStatement(sql: "SELECT data FROM review_campaigns WHERE id = ?"), arguments: [id])
            .map { try SQLiteStateStore.decode(ReviewCampaign.self, $0, what: "review campaign \(id)") }
    }

    func reviewCampaigns() throws -> [ReviewCampaign] {
        let decoder = SQLiteStateStore.decoder()
        return try String.fetchAll(db.cachedStatement(sql: "SELECT data FROM review_campaigns ORDER BY rowid DESC")).map {
            try SQLiteStateStore.decode(ReviewCampaign.self, $0, what: "review campaign", with: decoder)
        }
    }

    func reviewItems(campaign: String, reviewer: String?) throws -> [ReviewItem] {
        let decoder = SQLiteStateStore.decoder()
        let rows: [String]
        if let reviewer {
            rows = try String.fetchAll(
                db.cachedStatement(sql: """
                    SELECT i.data FROM review_reviewers r
                    JOIN review_items i ON i.campaign = r.campaign AND i.number = r.number
                    WHERE r.campaign = ? AND r.reviewer = ? ORDER BY r.number
                    """),
                arguments: [campaign, reviewer])
        } else {
            rows = try String.fetchAll(
                db.cachedStatement(sql: "SELECT data FROM review_items WHERE campaign = ? ORDER BY number"), arguments: [campaign])
        }
        return try rows.map { try SQLiteStateStore.decode(ReviewItem.self, $0, what: "review item of \(campaign)", with: decoder) }
    }

    func reviewItem(campaign: String, number: Int) throws -> ReviewItem? {
        try String.fetchOne(
            db.cachedStatement(sql: "SELECT data FROM review_items WHERE campaign = ? AND number = ?"), arguments: [campaign, number]
        ).map { try SQLiteStateStore.decode(ReviewItem.self, $0, what: "review item \(campaign) #\(number)") }
    }
}
