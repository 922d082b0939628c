import Foundation
import GRDB
import TetherCore

extension SQLiteStateStore {
    public func commit(_ changeset: Changeset) async throws -> CommitReceipt {
        let bulkCommitRows = bulkCommitRows
        defer { checkpointer.committed() }
        do {
            return try await pool.write { db in
                // A bulk commit (a cold start's million grants and audit records) inserts into
                // hash-keyed indexes all over the file: with the pages in memory it runs in
                // RAM instead of spilling and re-reading. The cache is shrunk again after.
                let bulk = changeset.steps.count + changeset.audit.count >= bulkCommitRows
                if bulk { try db.execute(sql: "PRAGMA cache_size = -1048576") }
                defer {
                    if bulk { try? db.execute(sql: "PRAGMA cache_size = -65536; PRAGMA shrink_memory") }
                }
                // Into empty tables (a cold start), the secondary indexes whose keys arrive out of
                // order are built once the rows are in, which sorts them instead of inserting a
                // million keys one by one. The drop and the rebuild are part of this transaction:
                // if it fails, so do they.
                let deferred = bulk ? try Self.dropIndexesOfEmptyBulkTables(in: db) : []
                let receipt = try Self.apply(changeset, in: db, sealAuditConcurrently: bulk)
                for index in deferred { try db.execute(sql: index) }
                return receipt
            }
        } catch let error as StoreError {
            throw error
        } catch let cancelled as CancellationError {
            // A cancelled task's read or write did not happen; that is not a store failure.
            throw cancelled
        } catch {
            throw StoreError(.write, "the change was not committed; nothing was applied", underlying: error)
        }
    }

    /// From this many rows a commit gets a 1 GiB page cache for its duration.
    public static let defaultBulkCommitRows = 100_000

    /// The tables a bulk commit fills whose secondary indexes it only writes, never reads.
    static let bulkTables = ["grants", "audit", "outbox"]

    /// The secondary indexes of the ``bulkTables`` that a bulk commit fills in key order, so
    /// that it keeps them: a plan's steps and their audit records come sorted by subject,
    /// and an agent's keys (agent, rowid) each go to the end of that agent's run. Building one
    /// after the rows reads its whole table back (the audit records are 8.7 GB at a million
    /// people), where filling it as the rows go in touches a page per row already in memory.
    static let bulkIndexesFilledInOrder: Set<String> = ["audit_subject", "audit_agent", "grants_agent"]

    /// Drops the secondary indexes of the ``bulkTables`` that hold no row, but those filled in
    /// key order; returns the statements that create them again, as the schema states them.
    static func dropIndexesOfEmptyBulkTables(in db: Database) throws -> [String] {
        var statements: [String] = []
        for table in bulkTables where try !Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM \(table))")! {
            // `sql` is NULL for the indexes behind PRIMARY KEY and UNIQUE: those stay.
            let indexes = try Row.fetchAll(
                db, sql: "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL ORDER BY name",
                arguments: [table])
            for index in indexes {
                let name: String = index["name"]
                if bulkIndexesFilledInOrder.contains(name) { continue }
                try db.execute(sql: "DROP INDEX \(name.quotedDatabaseIdentifier)")
                statements.append(index["sql"])
            }
        }
        return statements
    }

    /// Applies a changeset inside the caller's transaction.
    ///
    /// - Parameter sealAuditConcurrently: seal the audit records on another thread while the
    ///   other rows are written (a bulk commit: a cold start's million records).
    static func apply(_ changeset: Changeset, in db: Database, sealAuditConcurrently: Bool = false) throws -> CommitReceipt {
        let now = time(changeset.time)
        let superseded = try changeset.supersedes.map { supersededPlans(try supersededPlanIDs($0, in: db), by: $0, in: changeset) } ?? []
        // Not copied when nothing is superseded: a cold start's audit is a million entries.
        let audit = try AuditBatch(
            superseded.isEmpty ? changeset.audit : changeset.audit + superseded.map(\.audit), in: db,
            concurrently: sealAuditConcurrently)
        defer { audit.end() }
        if let record = changeset.event { try insert(record, in: db) }
        if let done = changeset.completedScheduledLeaver {
            try db.executeCached(sql: "UPDATE scheduled_leavers SET done = 1 WHERE event = ?", arguments: [done])
        }
        for identity in changeset.identities { try upsert(identity, in: db) }
        for lag in changeset.lags {
            try db.executeCached(
                sql: "INSERT INTO directory_lags (identity, data) VALUES (?, ?) ON CONFLICT(identity) DO UPDATE SET data = excluded.data",
                arguments: [lag.identity, try encode(lag)])
        }
        for identity in changeset.clearedLags {
            try db.executeCached(sql: "DELETE FROM directory_lags WHERE identity = ?", arguments: [identity])
        }
        for state in changeset.agentStates {
            try db.executeCached(
                sql: "INSERT INTO agent_states (agent, data) VALUES (?, ?) ON CONFLICT(agent) DO UPDATE SET data = excluded.data",
                arguments: [state.agent, try encode(state)])
        }
        if let state = changeset.sourceState {
            var described = state
            described.cookie = nil
            try db.executeCached(
                sql: """
                    INSERT INTO source_states (source, cookie, data) VALUES (?, ?, ?)
                    ON CONFLICT(source) DO UPDATE SET cookie = excluded.cookie, data = excluded.data
                    """,
                arguments: [state.source.rawValue, state.cookie, try encode(described)])
        }
        for (source, window) in changeset.windows {
            try db.executeCached(
                sql: "INSERT INTO safety_windows (source, data) VALUES (?, ?) ON CONFLICT(source) DO UPDATE SET data = excluded.data",
                arguments: [source.rawValue, try encode(window)])
        }
        for agent in changeset.registeredAgents {
            try db.executeCached(
                sql: """
                    INSERT INTO registered_agents (id, source, data) VALUES (?, ?, ?)
                    ON CONFLICT(id) DO UPDATE SET source = excluded.source, data = excluded.data
                    """,
                arguments: [agent.id, agent.source.rawValue, try encode(agent)])
        }
        for id in changeset.deletedAgents {
            try db.executeCached(sql: "DELETE FROM registered_agents WHERE id = ?", arguments: [id])
            try db.executeCached(sql: "DELETE FROM agent_states WHERE agent = ?", arguments: [id])
        }
        for id in changeset.endedExceptions {
            try db.executeCached(sql: "DELETE FROM exceptions WHERE id = ?", arguments: [id])
        }
        for exception in changeset.exceptions {
            try db.executeCached(
                sql: "INSERT INTO exceptions (id, subject, data) VALUES (?, ?, ?)",
                arguments: [exception.id, exception.subject, try encode(exception)])
        }
        for campaign in changeset.reviewCampaigns {
            try db.executeCached(
                sql: "INSERT INTO review_campaigns (id, data) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET data = excluded.data",
                arguments: [campaign.id, try encode(campaign)])
        }
        for item in changeset.reviewItems {
            let inserted = try db.cachedStatement(
                sql: "INSERT INTO review_items (campaign, number, data) VALUES (?, ?, ?) ON CONFLICT DO NOTHING")
            try inserted.execute(arguments: [item.campaign, item.number, try encode(item)])
            if db.changesCount > 0 {
                for reviewer in Set(item.reviewers) {
                    try db.executeCached(
                        sql: "INSERT INTO review_reviewers (campaign, reviewer, number) VALUES (?, ?, ?)",
                        arguments: [item.campaign, reviewer, item.number])
                }
            } else {
                // Who answers for an item is fixed when the campaign starts.
                try db.executeCached(
                    sql: "UPDATE review_items SET data = ? WHERE campaign = ? AND number = ?",
                    arguments: [try encode(item), item.campaign, item.number])
            }
        }
        try applySteps(changeset.steps, grantSeqs: audit.grantSeqs, targets: changeset.targets, now: now, in: db)
        let sealed = try audit.insert(in: db)
        if let plan = changeset.heldPlan {
            try db.executeCached(
                sql: """
                    INSERT INTO plans (id, scope, status, reason, createdAt, body, pendingIdentities)
                    VALUES (?, ?, 'held', ?, ?, ?, ?)
                    ON CONFLICT(id) DO UPDATE SET
                        status = 'held', reason = excluded.reason, createdAt = excluded.createdAt, resolvedBy = NULL,
                        body = excluded.body, pendingIdentities = excluded.pendingIdentities
                    WHERE plans.status <> 'held'
                    """,
                arguments: [
                    plan.id, plan.scope.description, plan.held ?? "", now, try encode(plan),
                    changeset.pendingIdentities.isEmpty ? nil : try encode(changeset.pendingIdentities),
                ])
        }
        if let resolution = changeset.planResolution {
            try db.executeCached(
                sql: "UPDATE plans SET status = ?, resolvedBy = ? WHERE id = ?",
                arguments: [resolution.status.rawValue, resolution.by, resolution.id])
        }
        for plan in superseded {
            try db.executeCached(
                sql: "UPDATE plans SET status = 'rejected', resolvedBy = ? WHERE id = ? AND status = 'held'",
                arguments: [plan.resolvedBy, plan.id])
        }
        return CommitReceipt(auditSeqs: sealed)
    }

    /// The held plans `supersession` makes obsolete: those of its scope, other than the plan
    /// it keeps and the plan this changeset resolves itself.
    static func supersededPlanIDs(_ supersession: Supersession, in db: Database) throws -> [String] {
        let readsClause = supersession.includingHeldReads ? "" : " AND pendingIdentities IS NULL"
        return try String.fetchAll(
            db.cachedStatement(sql: "SELECT id FROM plans WHERE status = 'held' AND scope = ?\(readsClause) ORDER BY createdAt, id"),
            arguments: [supersession.scope.description]
        ).filter { $0 != supersession.keeping }
    }

    private static func insert(_ record: EventRecord, in db: Database) throws {
        try db.executeCached(
            sql: """
                INSERT INTO events (id, source, kind, identity, status, receivedAt, payload) VALUES (?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(id) DO UPDATE SET status = excluded.status, identity = excluded.identity
                """,
            arguments: [
                record.event.id, record.event.source.rawValue, record.event.kind.rawValue, record.identity,
                record.status.rawValue, time(record.receivedAt), try encode(record.event),
            ])
        if record.status == .scheduled, let effectiveAt = record.event.effectiveAt {
            try db.executeCached(
                sql: "INSERT INTO scheduled_leavers (event, effectiveAt) VALUES (?, ?) ON CONFLICT(event) DO NOTHING",
                arguments: [record.event.id, time(effectiveAt)])
        }
    }

    private static func upsert(_ identity: Identity, in db: Database) throws {
        // Cached statements: a cold start upserts every identity of the directory.
        try db.cachedStatement(
            sql: """
                INSERT INTO identities (id, userName, emailLower, employeeNumber, status, data) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT(id) DO UPDATE SET userName = excluded.userName, emailLower = excluded.emailLower,
                    employeeNumber = excluded.employeeNumber, status = excluded.status, data = excluded.data
                """
        ).execute(arguments: [
            identity.id, identity.userName, identity.email?.lowercased(), identity.employeeNumber,
            identity.status.rawValue, IdentityJSON.encode(identity),
        ])
        try db.cachedStatement(sql: "DELETE FROM identity_links WHERE identity = ?").execute(arguments: [identity.id])
        for (source, facts) in identity.sources {
            guard let key = facts.externalId else { continue }
            try db.cachedStatement(
                sql: """
                    INSERT INTO identity_links (source, externalId, identity) VALUES (?, ?, ?)
                    ON CONFLICT(source, externalId) DO UPDATE SET identity = excluded.identity
                    """
            ).execute(arguments: [source.rawValue, key, identity.id])
        }
    }

    private static func applySteps(
        _ steps: [PlanStep], grantSeqs: [String: Int], targets: [String], now: String, in db: Database
    ) throws {
        let insertGrant = try db.cachedStatement(
            sql: """
                INSERT INTO grants (id, subject, agent, scope, resource, policy, lineage, grantedAt, auditSeq)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
        let deleteGrant = try db.cachedStatement(sql: "DELETE FROM grants WHERE id = ?")
        let enqueue = try db.cachedStatement(
            sql: "INSERT INTO outbox (target, grantId, operation, payload, createdAt) VALUES (?, ?, ?, ?, ?)")
        for step in steps {
            switch step {
            case .grant(let justified, _):
                let grant = justified.grant
                let id = grant.id
                try insertGrant.execute(arguments: [
                    id, grant.subject, grant.agent, grant.scope, grant.resource, justified.lineage.policy,
                    lineageJSON(justified.lineage), now, grantSeqs[id],
                ])
                for target in targets {
                    try enqueue.execute(arguments: [target, id, "put", try encode(grant), now])
                }
            case .revoke(let justified, _):
                let id = justified.grant.id
                try deleteGrant.execute(arguments: [id])
                for target in targets {
                    try enqueue.execute(arguments: [target, id, "delete", try encode(justified.grant), now])
                }
            case .quarantine, .release:
                continue
            }
        }
    }
}

extension Database {
    /// Executes `sql` through the connection's statement cache: prepared once, then reused by
    /// every later commit (preparing the same statements for each change was a measurable part
    /// of a leaver's time).
    func executeCached(sql: String, arguments: StatementArguments) throws {
        try cachedStatement(sql: sql).execute(arguments: arguments)
    }
}
