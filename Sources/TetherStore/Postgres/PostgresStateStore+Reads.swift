import Foundation
import TetherCore

extension PostgresStateStore {
    public func identityCounts() async throws -> [IdentityStatus: Int] {
        try await read { session in
            var counts: [IdentityStatus: Int] = [.active: 0, .suspended: 0, .terminated: 0]
            for row in try session.query("SELECT status, COUNT(*) FROM identities GROUP BY status") {
                if let status = IdentityStatus(rawValue: try row.get(0)) { counts[status] = try row.get(1, as: Int.self) }
            }
            return counts
        }
    }

    public func reduceIdentities<Result: Sendable>(
        into initial: Result, _ update: @escaping @Sendable (inout Result, Identity) throws -> Void
    ) async throws -> Result {
        try await read { session in
            var result = initial
            let sharing = IdentityValues()
            try session.batches("SELECT data FROM identities ORDER BY userName, id") { rows in
                for row in rows { try update(&result, try Self.identity(try row.get(0), what: "identity", sharing: sharing)) }
            }
            return result
        }
    }

    public func reviewCounts(campaign: String) async throws -> ReviewCounts {
        try await read { session in
            // PostgreSQL reads the two fields out of each item's JSON: no item is decoded here.
            let row = try session.query(
                """
                SELECT count(*),
                    count(*) FILTER (WHERE data::jsonb -> 'decision' IS NOT NULL AND data::jsonb -> 'decision' <> 'null'::jsonb),
                    count(*) FILTER (WHERE jsonb_array_length(coalesce(data::jsonb -> 'reviewers', '[]'::jsonb)) = 0)
                FROM review_items WHERE campaign = ?
                """,
                [campaign]
            ).first
            return ReviewCounts(
                items: try row?.get(0, as: Int.self) ?? 0, decided: try row?.get(1, as: Int.self) ?? 0,
                unassigned: try row?.get(2, as: Int.self) ?? 0)
        }
    }

    public func activeGroups() async throws -> (activeIdentities: Int, groups: Set<String>) {
        try await read { session in
            let count = try session.value(Int.self, "SELECT count(*) FROM identities WHERE status = 'active'") ?? 0
            // PostgreSQL reads the names out of each identity's JSON: no identity is decoded here.
            let groups = try session.column(
                String.self,
                """
                SELECT DISTINCT member FROM identities,
                    jsonb_array_elements_text(coalesce(identities.data::jsonb -> 'groups', '[]'::jsonb)) AS member
                WHERE identities.status = 'active'
                """)
            return (count, Set(groups))
        }
    }

    public func directoryLags() async throws -> [DirectoryLag] {
        try await read { session in
            try session.column(String.self, "SELECT data FROM directory_lags ORDER BY identity")
                .map { try Self.decode(DirectoryLag.self, $0, what: "directory lag") }
        }
    }

    public func grants(subject: String?, agent: String?) async throws -> [StoredGrant] {
        try await read { session in
            var filter = PostgresFilter()
            filter.add("subject = ?", subject)
            filter.add("agent = ?", agent)
            return try Self.fetchGrants(
                session, where: filter.condition + " ORDER BY subject, agent, scope, resource", filter.arguments)
        }
    }

    public func grant(id: String) async throws -> StoredGrant? {
        try await read { session in try Self.fetchGrants(session, where: "id = ?", [id]).first }
    }

    public func reduceGrantPolicies<Result: Sendable>(
        into initial: Result, _ update: @escaping @Sendable (inout Result, Grant, String) -> Void
    ) async throws -> Result {
        try await read { session in
            var result = initial
            try session.batches("SELECT subject, agent, scope, resource, policy FROM grants", size: 65_536) { rows in
                for row in rows {
                    let grant = Grant(subject: try row.get(0), agent: try row.get(1), scope: try row.get(2), resource: try row.get(3))
                    update(&result, grant, try row.get(4))
                }
            }
            return result
        }
    }

    public func scheduledLeavers(dueBy due: Date?) async throws -> [LifecycleEvent] {
        try await read { session in
            let sql = """
                SELECT e.payload FROM scheduled_leavers s JOIN events e ON e.id = s.event
                WHERE s.done = 0 \(due == nil ? "" : "AND s.effectiveAt <= ?") ORDER BY s.effectiveAt, s.event
                """
            return try session.column(String.self, sql, due.map { [Self.time($0)] } ?? [])
                .map { try Self.decode(LifecycleEvent.self, $0, what: "scheduled leaver") }
        }
    }

    public func planCount(status: PlanStatus) async throws -> Int {
        try await read { session in try session.value(Int.self, "SELECT COUNT(*) FROM plans WHERE status = ?", [status.rawValue]) ?? 0 }
    }

    public func plans(status: PlanStatus?) async throws -> [RecordedPlan] {
        try await read { session in
            let filter = status == nil ? "" : "WHERE status = ?"
            return try session.query(
                "SELECT \(Self.planColumns) FROM plans \(filter) ORDER BY createdAt, id", status.map { [$0.rawValue] } ?? []
            ).map(Self.recordedPlan)
        }
    }

    public func sourceStates() async throws -> [Source: SourceState] {
        try await read { session in
            var states: [Source: SourceState] = [:]
            for row in try session.query("SELECT cookie, data FROM source_states") {
                let state = try Self.decodedSourceState(row)
                states[state.source] = state
            }
            return states
        }
    }

    public func exceptions() async throws -> [AccessException] {
        try await read { session in try PostgresReads(session: session).exceptions(subjects: nil) }
    }

    public func targetBaseline(target: String) async throws -> TargetBaseline {
        try await read { session in
            var grants: [String: Grant] = [:]
            var policies: [String: String] = [:]
            try session.batches("SELECT id, subject, agent, scope, resource, policy FROM grants", size: 65_536) { rows in
                for row in rows {
                    let id: String = try row.get(0)
                    grants[id] = Grant(subject: try row.get(1), agent: try row.get(2), scope: try row.get(3), resource: try row.get(4))
                    policies[id] = try row.get(5)
                }
            }
            let waiting = try session.column(String.self, "SELECT DISTINCT grantId FROM outbox WHERE target = ?", [target])
            let seq = try session.value(Int.self, "SELECT MAX(seq) FROM audit") ?? 0
            return TargetBaseline(grants: grants, policies: policies, waiting: Set(waiting), auditSeq: seq)
        }
    }
}

extension PostgresStateStore {
    public func auditRecords(_ query: AuditQuery) async throws -> [AuditRecord] {
        try await read { session in
            var filter = PostgresFilter()
            filter.add("subject = ?", query.subject)
            filter.add("agent = ?", query.agent)
            filter.add("grantId = ?", query.grant)
            filter.add("time >= ?", query.since.map(Self.time))
            filter.add("seq > ?", query.afterSeq)
            let limit = query.limit.map { " LIMIT \($0)" } ?? ""
            return try session.column(String.self, "SELECT line FROM audit" + filter.sql + " ORDER BY seq" + limit, filter.arguments
            ).map(Self.parseRecord)
        }
    }

    public func lastAuditSeq() async throws -> Int {
        try await read { session in try session.value(Int.self, "SELECT MAX(seq) FROM audit") ?? 0 }
    }

    public func verifyAuditChain() async throws -> ChainVerification {
        try await read { session in AuditChain.verify(try Self.chainRows(session)) }
    }

    /// Every record's line and seq, in chain order: what verification walks.
    static func chainRows(_ session: PostgresSession) throws -> [(line: String, seq: Int)] {
        var rows: [(line: String, seq: Int)] = []
        try session.batches("SELECT seq, line FROM audit ORDER BY seq", size: 65_536) { batch in
            for row in batch { rows.append((try row.get(1), try row.get(0))) }
        }
        return rows
    }
}
