import Foundation
import GRDB
import TetherCore

extension SQLiteStateStore: UsageStore {
    /// Schema v11: last uses of grants and agents. A grant's row is deleted with the grant
    /// (a trigger), so a grant revoked and granted again starts unused.
    static func createUsageTables(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE grant_usage (
                grantId TEXT PRIMARY KEY NOT NULL,
                lastUsed INTEGER NOT NULL
            ) WITHOUT ROWID;
            CREATE TABLE agent_usage (
                agent TEXT PRIMARY KEY NOT NULL,
                lastUsed INTEGER NOT NULL
            ) WITHOUT ROWID;
            CREATE TRIGGER grant_usage_goes_with_grant AFTER DELETE ON grants
                BEGIN DELETE FROM grant_usage WHERE grantId = OLD.id; END;
            """)
    }

    public func recordUsage(_ usage: Usage) async throws {
        guard !usage.isEmpty else { return }
        defer { checkpointer.committed() }
        do {
            try await pool.write { db in
                // Only grants that exist: one revoked since the check was answered is dropped.
                let grant = try db.cachedStatement(sql: """
                    INSERT INTO grant_usage (grantId, lastUsed) SELECT id, ? FROM grants WHERE id = ?
                    ON CONFLICT (grantId) DO UPDATE SET lastUsed = max(lastUsed, excluded.lastUsed)
                    """)
                for (id, time) in usage.grants { try grant.execute(arguments: [time, id]) }
                let agent = try db.cachedStatement(sql: """
                    INSERT INTO agent_usage (agent, lastUsed) VALUES (?, ?)
                    ON CONFLICT (agent) DO UPDATE SET lastUsed = max(lastUsed, excluded.lastUsed)
                    """)
                for (id, time) in usage.agents { try agent.execute(arguments: [id, time]) }
            }
        } catch let cancelled as CancellationError {
            throw cancelled
        } catch {
            throw StoreError(.write, "recording grant usage in the store at \(path) failed; nothing was changed", underlying: error)
        }
    }

    public func grantUsage() async throws -> [String: Int64] {
        try await read { db in
            var usage: [String: Int64] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT grantId, lastUsed FROM grant_usage") { usage[row["grantId"]] = row["lastUsed"] }
            return usage
        }
    }

    public func agentUsage() async throws -> [String: Int64] {
        try await read { db in
            var usage: [String: Int64] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT agent, lastUsed FROM agent_usage") { usage[row["agent"]] = row["lastUsed"] }
            return usage
        }
    }

    public func earliestGrants() async throws -> [String: Date] {
        try await read { db in
            var times: [String: Date] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT agent, MIN(grantedAt) AS earliest FROM grants GROUP BY agent") {
                let text: String = row["earliest"]
                times[row["agent"]] = Timestamp.parse(text)
            }
            return times
        }
    }
}
