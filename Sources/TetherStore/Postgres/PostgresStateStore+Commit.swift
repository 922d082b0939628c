import Foundation
import TetherCore

extension PostgresStateStore {
    public func commit(_ changeset: Changeset) async throws -> CommitReceipt {
        let receipt = try await write("the change") { session in try Self.apply(changeset, in: session) }
        if changeset.addsOutboxRows { insertions.ring() }
        return receipt
    }

    /// Takes the audit chain's head for this transaction: every transaction that writes audit
    /// records takes it first, so they number and chain their records one after the other,
    /// with no gap, while readers go on reading.
    static func lockAuditHead(in session: PostgresSession) throws {
        try session.execute("LOCK TABLE audit IN SHARE ROW EXCLUSIVE MODE")
    }

    /// Applies a changeset inside the caller's transaction.
    static func apply(_ changeset: Changeset, in session: PostgresSession) throws -> CommitReceipt {
        try lockAuditHead(in: session)
        let now = time(changeset.time)
        let superseded = try changeset.supersedes.map { supersededPlans(try supersededPlanIDs($0, in: session), by: $0, in: changeset) } ?? []
        let entries = changeset.audit + superseded.map(\.audit)
        var (first, prev) = (1, AuditRecord.genesis)
        if !entries.isEmpty, let head = try session.query("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").first {
            first = try head.get(0, as: Int.self) + 1
            prev = try head.get(1)
        }
        var grantSeqs: [String: Int] = [:]
        for (offset, entry) in entries.enumerated() where entry.action == .grantGranted {
            if let grant = entry.fields["grant"] { grantSeqs[grant] = first + offset }
        }
        if let record = changeset.event { try insert(record, in: session) }
        if let done = changeset.completedScheduledLeaver {
            try session.execute("UPDATE scheduled_leavers SET done = 1 WHERE event = ?", [done])
        }
        try upsert(changeset.identities, in: session)
        for lag in changeset.lags {
            try session.execute(
                "INSERT INTO directory_lags (identity, data) VALUES (?, ?) ON CONFLICT(identity) DO UPDATE SET data = excluded.data",
                [lag.identity, try encode(lag)])
        }
        if !changeset.clearedLags.isEmpty {
            try session.execute("DELETE FROM directory_lags WHERE identity = ANY(?)", [Array(changeset.clearedLags)])
        }
        for state in changeset.agentStates {
            try session.execute(
                "INSERT INTO agent_states (agent, data) VALUES (?, ?) ON CONFLICT(agent) DO UPDATE SET data = excluded.data",
                [state.agent, try encode(state)])
        }
        if let state = changeset.sourceState {
            var described = state
            described.cookie = nil
            try session.execute(
                """
                INSERT INTO source_states (source, cookie, data) VALUES (?, ?, ?)
                ON CONFLICT(source) DO UPDATE SET cookie = excluded.cookie, data = excluded.data
                """,
                [state.source.rawValue, state.cookie, try encode(described)])
        }
        for (source, window) in changeset.windows {
            try session.execute(
                "INSERT INTO safety_windows (source, data) VALUES (?, ?) ON CONFLICT(source) DO UPDATE SET data = excluded.data",
                [source.rawValue, try encode(window)])
        }
        for agent in changeset.registeredAgents {
            try session.execute(
                """
                INSERT INTO registered_agents (id, source, data) VALUES (?, ?, ?)
                ON CONFLICT(id) DO UPDATE SET source = excluded.source, data = excluded.data
                """,
                [agent.id, agent.source.rawValue, try encode(agent)])
        }
        for id in changeset.deletedAgents {
            try session.execute("DELETE FROM registered_agents WHERE id = ?", [id])
            try session.execute("DELETE FROM agent_states WHERE agent = ?", [id])
        }
        for id in changeset.endedExceptions {
            try session.execute("DELETE FROM exceptions WHERE id = ?", [id])
        }
        for exception in changeset.exceptions {
            try session.execute(
                "INSERT INTO exceptions (id, subject, data) VALUES (?, ?, ?)", [exception.id, exception.subject, try encode(exception)])
        }
        for campaign in changeset.reviewCampaigns {
            try session.execute(
                "INSERT INTO review_campaigns (id, data) VALUES (?, ?) ON CONFLICT(id) DO UPDATE SET data = excluded.data",
                [campaign.id, try encode(campaign)])
        }
        for item in changeset.reviewItems {
            let inserted = try session.execute(
                "INSERT INTO review_items (campaign, number, data) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                [item.campaign, item.number, try encode(item)])
            if inserted > 0 {
                for reviewer in Set(item.reviewers) {
                    try session.execute(
                        "INSERT INTO review_reviewers (campaign, reviewer, number) VALUES (?, ?, ?)", [item.campaign, reviewer, item.number])
                }
            } else {
                // Who answers for an item is fixed when the campaign starts.
                try session.execute(
                    "UPDATE review_items SET data = ? WHERE campaign = ? AND number = ?", [try encode(item), item.campaign, item.number])
            }
        }
        try applySteps(changeset.steps, grantSeqs: grantSeqs, targets: changeset.targets, now: now, in: session)
        let sealed = try insertAudit(entries, first: first, prev: prev, in: session)
        if let plan = changeset.heldPlan {
            try session.execute(
                """
                INSERT INTO plans (id, scope, status, reason, createdAt, body, pendingIdentities)
                VALUES (?, ?, 'held', ?, ?, ?, ?)
                ON CONFLICT(id) DO UPDATE SET
                    status = 'held', reason = excluded.reason, createdAt = excluded.createdAt, resolvedBy = NULL,
                    body = excluded.body, pendingIdentities = excluded.pendingIdentities
                WHERE plans.status <> 'held'
                """,
                [
                    plan.id, plan.scope.description, plan.held ?? "", now, try encode(plan),
                    changeset.pendingIdentities.isEmpty ? nil : try encode(changeset.pendingIdentities),
                ])
        }
        if let resolution = changeset.planResolution {
            try session.execute(
                "UPDATE plans SET status = ?, resolvedBy = ? WHERE id = ?", [resolution.status.rawValue, resolution.by, resolution.id])
        }
        for plan in superseded {
            try session.execute(
                "UPDATE plans SET status = 'rejected', resolvedBy = ? WHERE id = ? AND status = 'held'", [plan.resolvedBy, plan.id])
        }
        // Delivered to every listening node when the transaction commits, never before.
        if let sealed { try session.execute("SELECT pg_notify(?, ?)", [revisionChannel, String(sealed.upperBound)]) }
        return CommitReceipt(auditSeqs: sealed)
    }

    /// Rows per statement of a bulk insert: one statement binds a column of each as an array.
    static let insertChunk = 10_000

    /// Seals `entries` onto the chain after (`first` - 1, `prev`) and inserts them, a chunk at
    /// a time: each chunk is sealed just before it is sent, so the transaction never sits idle
    /// for long between statements, however many records it writes (the server ends a write
    /// transaction idle for a lease's duration).
    static func insertAudit(_ entries: [AuditEntry], first: Int, prev: String, in session: PostgresSession) throws -> ClosedRange<Int>? {
        guard !entries.isEmpty else { return nil }
        var previous = prev
        try AuditBatch.seal(entries, first: first, prev: prev, inChunksOf: insertChunk) { range, sealed in
            let chunk = entries[range]
            var prevs: [String] = []
            prevs.reserveCapacity(chunk.count)
            for record in sealed {
                prevs.append(previous)
                previous = record.hash
            }
            try session.execute(
                """
                INSERT INTO audit (seq, hash, prev, action, actor, subject, agent, grantId, time, line)
                SELECT * FROM unnest(?::bigint[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[],
                    ?::text[], ?::text[])
                """,
                [
                    PostgresArray(range.map { Int64(first + $0) }), PostgresArray(sealed.map(\.hash)), PostgresArray(prevs),
                    PostgresArray(chunk.map(\.action.rawValue)), PostgresArray(chunk.map(\.actor.description)),
                    PostgresArray(chunk.map { $0.fields["subject"] }), PostgresArray(chunk.map { $0.fields["agent"] }),
                    PostgresArray(chunk.map { $0.fields["grant"] }), PostgresArray(sealed.map(\.time)),
                    PostgresArray(sealed.map(\.line)),
                ])
            return true
        }
        return first...(first + entries.count - 1)
    }

    /// The held plans `supersession` makes obsolete: those of its scope, other than the plan
    /// it keeps and the plan this changeset resolves itself.
    static func supersededPlanIDs(_ supersession: Supersession, in session: PostgresSession) throws -> [String] {
        let readsClause = supersession.includingHeldReads ? "" : " AND pendingIdentities IS NULL"
        return try session.column(
            String.self, "SELECT id FROM plans WHERE status = 'held' AND scope = ?\(readsClause) ORDER BY createdAt, id",
            [supersession.scope.description]
        ).filter { $0 != supersession.keeping }
    }

    private static func insert(_ record: EventRecord, in session: PostgresSession) throws {
        try session.execute(
            """
            INSERT INTO events (id, source, kind, identity, status, receivedAt, payload) VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(id) DO UPDATE SET status = excluded.status, identity = excluded.identity
            """,
            [
                record.event.id, record.event.source.rawValue, record.event.kind.rawValue, record.identity,
                record.status.rawValue, time(record.receivedAt), try encode(record.event),
            ])
        if record.status == .scheduled, let effectiveAt = record.event.effectiveAt {
            try session.execute(
                "INSERT INTO scheduled_leavers (event, effectiveAt) VALUES (?, ?) ON CONFLICT(event) DO NOTHING",
                [record.event.id, time(effectiveAt)])
        }
    }

    /// Upserts identities and replaces their links, a chunk of them per statement: a cold start
    /// writes every identity of the directory.
    private static func upsert(_ identities: [Identity], in session: PostgresSession) throws {
        for start in stride(from: 0, to: identities.count, by: insertChunk) {
            let chunk = identities[start..<min(start + insertChunk, identities.count)]
            try session.execute(
                """
                INSERT INTO identities (id, userName, emailLower, employeeNumber, status, data)
                SELECT * FROM unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[])
                ON CONFLICT(id) DO UPDATE SET userName = excluded.userName, emailLower = excluded.emailLower,
                    employeeNumber = excluded.employeeNumber, status = excluded.status, data = excluded.data
                """,
                [
                    PostgresArray(chunk.map(\.id)), PostgresArray(chunk.map(\.userName)),
                    PostgresArray(chunk.map { $0.email?.lowercased() }), PostgresArray(chunk.map(\.employeeNumber)),
                    PostgresArray(chunk.map(\.status.rawValue)), PostgresArray(chunk.map(IdentityJSON.encode)),
                ])
            try session.execute("DELETE FROM identity_links WHERE identity = ANY(?)", [chunk.map(\.id)])
            var links: (sources: [String], keys: [String], identities: [String]) = ([], [], [])
            for identity in chunk {
                for (source, facts) in identity.sources {
                    guard let key = facts.externalId else { continue }
                    links.sources.append(source.rawValue)
                    links.keys.append(key)
                    links.identities.append(identity.id)
                }
            }
            guard !links.keys.isEmpty else { continue }
            try session.execute(
                """
                INSERT INTO identity_links (source, externalId, identity) SELECT * FROM unnest(?::text[], ?::text[], ?::text[])
                ON CONFLICT(source, externalId) DO UPDATE SET identity = excluded.identity
                """,
                [links.sources, links.keys, links.identities])
        }
    }

    private static func applySteps(
        _ steps: [PlanStep], grantSeqs: [String: Int], targets: [String], now: String, in session: PostgresSession
    ) throws {
        var granted: [JustifiedGrant] = []
        var revoked: [String] = []
        var outbox: [(target: String, grant: Grant, operation: String)] = []
        for step in steps {
            switch step {
            case .grant(let justified, _):
                granted.append(justified)
                for target in targets { outbox.append((target, justified.grant, "put")) }
            case .revoke(let justified, _):
                revoked.append(justified.grant.id)
                for target in targets { outbox.append((target, justified.grant, "delete")) }
            case .quarantine, .release:
                continue
            }
        }
        // A revocation and a grant of the same id in one changeset keep their order: revoked first.
        if !revoked.isEmpty { try session.execute("DELETE FROM grants WHERE id = ANY(?)", [revoked]) }
        for start in stride(from: 0, to: granted.count, by: insertChunk) {
            let chunk = granted[start..<min(start + insertChunk, granted.count)]
            try session.execute(
                """
                INSERT INTO grants (id, subject, agent, scope, resource, policy, lineage, grantedAt, auditSeq)
                SELECT id, subject, agent, scope, resource, policy, lineage, ?, auditSeq
                FROM unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::bigint[])
                    AS g(id, subject, agent, scope, resource, policy, lineage, auditSeq)
                """,
                [
                    now, PostgresArray(chunk.map(\.grant.id)), PostgresArray(chunk.map(\.grant.subject)),
                    PostgresArray(chunk.map(\.grant.agent)), PostgresArray(chunk.map(\.grant.scope)),
                    PostgresArray(chunk.map(\.grant.resource)), PostgresArray(chunk.map(\.lineage.policy)),
                    PostgresArray(chunk.map { lineageJSON($0.lineage) }),
                    PostgresArray(chunk.map { grantSeqs[$0.grant.id].map(Int64.init) }),
                ])
        }
        try enqueue(outbox, now: now, in: session)
    }

    /// Adds outbox rows in the order given, which is the order they are delivered in.
    static func enqueue(_ rows: [(target: String, grant: Grant, operation: String)], now: String, in session: PostgresSession) throws {
        for start in stride(from: 0, to: rows.count, by: insertChunk) {
            let chunk = rows[start..<min(start + insertChunk, rows.count)]
            try session.execute(
                """
                INSERT INTO outbox (target, grantId, operation, payload, createdAt)
                SELECT target, grantId, operation, payload, ?
                FROM unnest(?::text[], ?::text[], ?::text[], ?::text[]) WITH ORDINALITY AS o(target, grantId, operation, payload, n)
                ORDER BY n
                """,
                [
                    now, PostgresArray(chunk.map(\.target)), PostgresArray(chunk.map(\.grant.id)),
                    PostgresArray(chunk.map(\.operation)), PostgresArray(try chunk.map { try encode($0.grant) }),
                ])
        }
    }
}

extension Changeset {
    /// Whether committing it adds rows to the target outbox.
    var addsOutboxRows: Bool {
        !targets.isEmpty && steps.contains { if case .grant = $0 { true } else if case .revoke = $0 { true } else { false } }
    }
}
