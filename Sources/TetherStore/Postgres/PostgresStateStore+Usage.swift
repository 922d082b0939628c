import Foundation
import TetherCore

extension PostgresStateStore: UsageStore {
    public func recordUsage(_ usage: Usage) async throws {
        guard !usage.isEmpty else { return }
        // Any node records the last uses of the checks it answered.
        try await write("recording grant usage", fenced: false) { session in
            // Only grants that exist: one revoked since the check was answered is dropped.
            let grants = usage.grants.sorted { $0.key < $1.key }
            try session.execute(
                """
                INSERT INTO grant_usage (grantId, lastUsed)
                SELECT g.id, u.lastUsed FROM unnest(?::text[], ?::bigint[]) AS u(grantId, lastUsed) JOIN grants g ON g.id = u.grantId
                ON CONFLICT (grantId) DO UPDATE SET lastUsed = greatest(grant_usage.lastUsed, excluded.lastUsed)
                """,
                [PostgresArray(grants.map(\.key)), PostgresArray(grants.map { Optional($0.value) })])
            let agents = usage.agents.sorted { $0.key < $1.key }
            try session.execute(
                """
                INSERT INTO agent_usage (agent, lastUsed) SELECT * FROM unnest(?::text[], ?::bigint[])
                ON CONFLICT (agent) DO UPDATE SET lastUsed = greatest(agent_usage.lastUsed, excluded.lastUsed)
                """,
                [PostgresArray(agents.map(\.key)), PostgresArray(agents.map { Optional($0.value) })])
        }
    }

    public func grantUsage() async throws -> [String: Int64] {
        try await read { session in
            var usage: [String: Int64] = [:]
            for row in try session.query("SELECT grantId, lastUsed FROM grant_usage") { usage[try row.get(0)] = try row.get(1) }
            return usage
        }
    }

    public func agentUsage() async throws -> [String: Int64] {
        try await read { session in
            var usage: [String: Int64] = [:]
            for row in try session.query("SELECT agent, lastUsed FROM agent_usage") { usage[try row.get(0)] = try row.get(1) }
            return usage
        }
    }

    public func earliestGrants() async throws -> [String: Date] {
        try await read { session in
            var times: [String: Date] = [:]
            for row in try session.query("SELECT agent, MIN(grantedAt) FROM grants GROUP BY agent") {
                times[try row.get(0)] = Timestamp.parse(try row.get(1))
            }
            return times
        }
    }
}
