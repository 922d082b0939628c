import Foundation
import GRDB
import TetherCore

extension SQLiteStateStore {
    public func identityCounts() async throws -> [IdentityStatus: Int] {
        try await read { db in
            var counts: [IdentityStatus: Int] = [.active: 0, .suspended: 0, .terminated: 0]
            for row in try Row.fetchAll(db, sql: "SELECT status, COUNT(*) AS n FROM identities GROUP BY status") {
                if let status = IdentityStatus(rawValue: row["status"]) { counts[status] = row["n"] }
            }
            return counts
        }
    }

    public func reduceIdentities<Result: Sendable>(
        into initial: Result, _ update: @escaping @Sendable (inout Result, Identity) throws -> Void
    ) async throws -> Result {
        try await read { db in
            var result = initial
            let rows = try String.fetchCursor(db, sql: "SELECT data FROM identities ORDER BY userName, id")
            let sharing = IdentityValues()
            while let text = try rows.next() { try update(&result, try Self.identity(text, what: "identity", sharing: sharing)) }
            return result
        }
    }

    public func reviewCounts(campaign: String) async throws -> ReviewCounts {
        try await read { db in
            // SQLite reads the two fields out of each item's JSON: no item is decoded.
            let row = try Row.fetchOne(
                db,
                sql: """
                    SELECT count(*) AS items,
                        coalesce(sum(json_extract(data, '$.decision') IS NOT NULL), 0) AS decided,
                        coalesce(sum(json_array_length(data, '$.reviewers') = 0), 0) AS unassigned
                    FROM review_items WHERE campaign = ?
                    """,
                arguments: [campaign])
            return ReviewCounts(items: row?["items"] ?? 0, decided: row?["decided"] ?? 0, unassigned: row?["unassigned"] ?? 0)
        }
    }

    public func activeGroups() async throws -> (activeIdentities: Int, groups: Set<String>) {
        try await read { db in
            let count = try Int.fetchOne(db, sql: "SELECT count(*) FROM identities WHERE status = 'active'") ?? 0
            // SQLite reads the names out of each identity's JSON: no identity is decoded.
            let groups = try String.fetchSet(
                db,
                sql: """
                    SELECT DISTINCT member.value FROM identities, json_each(identities.data, '$.groups') AS member
                    WHERE identities.status = 'active'
                    """)
            return (count, groups)
        }
    }

    public func directoryLags() async throws -> [DirectoryLag] {
        try await read { db in
            try String.fetchAll(db, sql: "SELECT data FROM directory_lags ORDER BY identity")
                .map { try Self.decode(DirectoryLag.self, $0, what: "directory lag") }
        }
    }

    public func grants(subject: String?, agent: String?) async throws -> [StoredGrant] {
        try await read { db in
            var clauses: [String] = []
            var arguments: StatementArguments = []
            if let subject {
                clauses.append("subject = ?")
                arguments += [subject]
            }
            if let agent {
                clauses.append("agent = ?")
                arguments += [agent]
            }
            let filter = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
            return try Self.fetchGrants(db, sql: "SELECT * FROM grants \(filter) ORDER BY subject, agent, scope, resource", arguments)
        }
    }

    public func grant(id: String) async throws -> StoredGrant? {
        try await read { db in try Self.fetchGrants(db, sql: "SELECT * FROM grants WHERE id = ?", [id]).first }
    }

    public func reduceGrantPolicies<Result: Sendable>(
        into initial: Result, _ update: @escaping @Sendable (inout Result, Grant, String) -> Void
    ) async throws -> Result {
        try await read { db in
            var result = initial
            let rows = try Row.fetchCursor(db, sql: "SELECT subject, agent, scope, resource, policy FROM grants")
            while let row = try rows.next() {
                update(&result, Grant(subject: row[0], agent: row[1], scope: row[2], resource: row[3]), row[4])
            }
            return result
        }
    }

    /// - Parameter cached: keep the prepared statement for the next call: for SQL that does not
    ///   vary from call to call.
    static func fetchGrants(_ db: Database, sql: String, _ arguments: StatementArguments, cached: Bool = true) throws -> [StoredGrant] {
        let decoder = Self.decoder()
        let statement = cached ? try db.cachedStatement(sql: sql) : try db.makeStatement(sql: sql)
        return try Row.fetchAll(statement, arguments: arguments).map { row in
            let grant = Grant(subject: row["subject"], agent: row["agent"], scope: row["scope"], resource: row["resource"])
            let text: String = row["lineage"]
            let lineage = try Lineage.read(text) ?? decode(Lineage.self, text, what: "lineage of \(grant.id)", with: decoder)
            let grantedAt: String = row["grantedAt"]
            return StoredGrant(
                justified: JustifiedGrant(grant: grant, lineage: lineage),
                grantedAt: Timestamp.parse(grantedAt) ?? Date(timeIntervalSince1970: 0),
                auditSeq: row["auditSeq"])
        }
    }

    public func scheduledLeavers(dueBy due: Date?) async throws -> [LifecycleEvent] {
        try await read { db in
            let sql = """
                SELECT e.payload FROM scheduled_leavers s JOIN events e ON e.id = s.event
                WHERE s.done = 0 \(due == nil ? "" : "AND s.effectiveAt <= ?") ORDER BY s.effectiveAt, s.event
                """
            let arguments: StatementArguments = due.map { [Self.time($0)] } ?? []
            return try String.fetchAll(db, sql: sql, arguments: arguments)
                .map { try Self.decode(LifecycleEvent.self, $0, what: "scheduled leaver") }
        }
    }

    public func planCount(status: PlanStatus) async throws -> Int {
        try await read { db in
            try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM plans WHERE status = ?", arguments: [status.rawValue]) ?? 0
        }
    }

    public func plans(status: PlanStatus?) async throws -> [RecordedPlan] {
        try await read { db in
            let filter = status == nil ? "" : "WHERE status = ?"
            let arguments: StatementArguments = status.map { [$0.rawValue] } ?? []
            return try Row.fetchAll(db, sql: "SELECT * FROM plans \(filter) ORDER BY createdAt, id", arguments: arguments)
                .map(Self.recordedPlan)
        }
    }

    static func recordedPlan(_ row: Row) throws -> RecordedPlan {
        let createdAt: String = row["createdAt"]
        return RecordedPlan(
            plan: try decode(Plan.self, row["body"], what: "plan"),
            status: PlanStatus(rawValue: row["status"]) ?? .held,
            createdAt: Timestamp.parse(createdAt) ?? Date(timeIntervalSince1970: 0),
            resolvedBy: row["resolvedBy"],
            pendingIdentities: try (row["pendingIdentities"] as String?).map {
                try decode([Identity].self, $0, what: "identities pending with a plan")
            } ?? [])
    }

    public func outbox(target: String?) async throws -> [OutboxEntry] {
        try await read { db in
            let filter = target == nil ? "" : "WHERE target = ?"
            let arguments: StatementArguments = target.map { [$0] } ?? []
            return try Row.fetchAll(db, sql: "SELECT * FROM outbox \(filter) ORDER BY id", arguments: arguments)
                .map(Self.outboxEntry)
        }
    }

    public func sourceStates() async throws -> [Source: SourceState] {
        try await read { db in
            var states: [Source: SourceState] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT cookie, data FROM source_states") {
                let state = try Self.decodedSourceState(row)
                states[state.source] = state
            }
            return states
        }
    }

    public func exceptions() async throws -> [AccessException] {
        try await read { db in try SQLiteReads(db: db).exceptions(subjects: nil) }
    }

    static func decodedSourceState(_ row: Row) throws -> SourceState {
        var state = try decode(SourceState.self, row["data"], what: "source state")
        state.cookie = row["cookie"]
        return state
    }
}
