import GRDB

extension SQLiteStateStore {
    /// Named, append-only migrations. Never edit a shipped migration: add the next one.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1: identities, grants, events, plans, audit, outbox") { db in
            try db.execute(sql: """
                CREATE TABLE identities (
                    id TEXT PRIMARY KEY NOT NULL,
                    userName TEXT NOT NULL,
                    emailLower TEXT,
                    employeeNumber TEXT,
                    status TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'terminated')),
                    data TEXT NOT NULL
                );
                CREATE INDEX identities_userName ON identities(userName);
                CREATE INDEX identities_emailLower ON identities(emailLower);
                CREATE INDEX identities_employeeNumber ON identities(employeeNumber);
                CREATE INDEX identities_status ON identities(status);

                CREATE TABLE identity_links (
                    source TEXT NOT NULL,
                    externalId TEXT NOT NULL,
                    identity TEXT NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
                    PRIMARY KEY (source, externalId)
                );
                CREATE INDEX identity_links_identity ON identity_links(identity);

                CREATE TABLE directory_lags (
                    identity TEXT PRIMARY KEY NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
                    data TEXT NOT NULL
                );

                CREATE TABLE grants (
                    id TEXT PRIMARY KEY NOT NULL,
                    subject TEXT NOT NULL,
                    agent TEXT NOT NULL,
                    scope TEXT NOT NULL,
                    resource TEXT NOT NULL,
                    policy TEXT NOT NULL,
                    lineage TEXT NOT NULL,
                    grantedAt TEXT NOT NULL,
                    auditSeq INTEGER,
                    UNIQUE (subject, agent, scope, resource)
                );
                CREATE INDEX grants_agent ON grants(agent);

                CREATE TABLE agent_states (
                    agent TEXT PRIMARY KEY NOT NULL,
                    data TEXT NOT NULL
                );

                CREATE TABLE events (
                    id TEXT PRIMARY KEY NOT NULL,
                    source TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    identity TEXT,
                    status TEXT NOT NULL CHECK (status IN ('applied', 'stale', 'scheduled', 'rejected')),
                    receivedAt TEXT NOT NULL,
                    payload TEXT NOT NULL
                );

                CREATE TABLE scheduled_leavers (
                    event TEXT PRIMARY KEY NOT NULL REFERENCES events(id),
                    effectiveAt TEXT NOT NULL,
                    done INTEGER NOT NULL DEFAULT 0
                );
                CREATE INDEX scheduled_leavers_due ON scheduled_leavers(done, effectiveAt);

                CREATE TABLE plans (
                    id TEXT PRIMARY KEY NOT NULL,
                    scope TEXT NOT NULL,
                    status TEXT NOT NULL CHECK (status IN ('held', 'approved', 'rejected')),
                    reason TEXT NOT NULL,
                    createdAt TEXT NOT NULL,
                    resolvedBy TEXT,
                    body TEXT NOT NULL,
                    pendingIdentities TEXT
                );

                CREATE TABLE audit (
                    seq INTEGER PRIMARY KEY NOT NULL,
                    hash TEXT NOT NULL UNIQUE,
                    prev TEXT NOT NULL,
                    action TEXT NOT NULL,
                    actor TEXT NOT NULL,
                    subject TEXT,
                    agent TEXT,
                    grantId TEXT,
                    time TEXT NOT NULL,
                    line TEXT NOT NULL
                );
                CREATE INDEX audit_subject ON audit(subject);
                CREATE INDEX audit_agent ON audit(agent);
                CREATE INDEX audit_grant ON audit(grantId);
                CREATE TRIGGER audit_is_append_only_update BEFORE UPDATE ON audit
                    BEGIN SELECT RAISE(ABORT, 'audit records are never updated'); END;
                CREATE TRIGGER audit_is_append_only_delete BEFORE DELETE ON audit
                    BEGIN SELECT RAISE(ABORT, 'audit records are never deleted'); END;

                CREATE TABLE outbox (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    target TEXT NOT NULL,
                    grantId TEXT NOT NULL,
                    operation TEXT NOT NULL CHECK (operation IN ('put', 'delete')),
                    payload TEXT NOT NULL,
                    createdAt TEXT NOT NULL,
                    attempts INTEGER NOT NULL DEFAULT 0,
                    nextAttemptAt TEXT,
                    lastError TEXT
                );
                CREATE INDEX outbox_target ON outbox(target, id);

                CREATE TABLE source_states (
                    source TEXT PRIMARY KEY NOT NULL,
                    cookie BLOB,
                    data TEXT NOT NULL
                );
                """)
        }
        migrator.registerMigration("v2: scim resources", migrate: createSCIMTables)
        migrator.registerMigration("v3: outbox delivery order") { db in
            // Revocations first, the grant rows a later revocation supersedes, and the next retry.
            try db.execute(sql: """
                CREATE INDEX outbox_target_operation ON outbox(target, operation, id);
                CREATE INDEX outbox_target_grant ON outbox(target, grantId, id);
                CREATE INDEX outbox_target_retry ON outbox(target, nextAttemptAt);
                """)
        }
        migrator.registerMigration("v4: held plans by scope") { db in
            // Every committed decision asks which plans of its scope are still held.
            try db.execute(sql: "CREATE INDEX plans_held_scope ON plans(scope) WHERE status = 'held'")
        }
        migrator.registerMigration("v5: outbox failures by time") { db in
            // `tether status` and /metrics name the latest failure of a target's waiting changes.
            try db.execute(sql: """
                ALTER TABLE outbox ADD COLUMN lastAttemptAt TEXT;
                CREATE INDEX outbox_target_failed ON outbox(target, lastAttemptAt) WHERE lastAttemptAt IS NOT NULL;
                """)
        }
        migrator.registerMigration("v6: pending scim members", migrate: createPendingSCIMMembers)
        migrator.registerMigration("v7: revocation windows") { db in
            // Each source's recent revocations (SPEC §6 safety.window), so a restart keeps the budget.
            try db.execute(sql: """
                CREATE TABLE safety_windows (
                    source TEXT PRIMARY KEY NOT NULL,
                    data TEXT NOT NULL
                )
                """)
        }
        migrator.registerMigration("v8: audit without an index of its hashes") { db in
            // The chain is held by seq and prev and checked by recomputing it; nothing looks a
            // record up by its hash. A unique index of the hashes, keyed at random, was a third
            // of the pages a leaver's commit wrote, and one of the two indexes a cold start
            // could not defer. The table is rebuilt without it (SQLite cannot drop a column's
            // UNIQUE in place), its indexes and append-only triggers as before.
            try db.execute(sql: """
                DROP TRIGGER audit_is_append_only_update;
                DROP TRIGGER audit_is_append_only_delete;
                CREATE TABLE audit_rebuilt (
                    seq INTEGER PRIMARY KEY NOT NULL,
                    hash TEXT NOT NULL,
                    prev TEXT NOT NULL,
                    action TEXT NOT NULL,
                    actor TEXT NOT NULL,
                    subject TEXT,
                    agent TEXT,
                    grantId TEXT,
                    time TEXT NOT NULL,
                    line TEXT NOT NULL
                );
                INSERT INTO audit_rebuilt (seq, hash, prev, action, actor, subject, agent, grantId, time, line)
                    SELECT seq, hash, prev, action, actor, subject, agent, grantId, time, line FROM audit ORDER BY seq;
                DROP TABLE audit;
                ALTER TABLE audit_rebuilt RENAME TO audit;
                CREATE INDEX audit_subject ON audit(subject);
                CREATE INDEX audit_agent ON audit(agent);
                CREATE INDEX audit_grant ON audit(grantId);
                CREATE TRIGGER audit_is_append_only_update BEFORE UPDATE ON audit
                    BEGIN SELECT RAISE(ABORT, 'audit records are never updated'); END;
                CREATE TRIGGER audit_is_append_only_delete BEFORE DELETE ON audit
                    BEGIN SELECT RAISE(ABORT, 'audit records are never deleted'); END;
                """)
        }
        migrator.registerMigration("v9: audit checkpoints", migrate: createCheckpointTables)
        migrator.registerMigration("v10: access exceptions") { db in
            // Operators' exceptions to policy (SPEC §17), in the order they were made (rowid).
            try db.execute(sql: """
                CREATE TABLE exceptions (
                    id TEXT NOT NULL UNIQUE,
                    subject TEXT NOT NULL,
                    data TEXT NOT NULL
                );
                CREATE INDEX exceptions_by_subject ON exceptions(subject);
                """)
        }
        migrator.registerMigration("v11: grant usage", migrate: createUsageTables)
        migrator.registerMigration("v12: agent registry") { db in
            // Agents registered at runtime by SCIM clients and operators (SPEC §15), each stored
            // whole; in the order they were registered (rowid).
            try db.execute(sql: """
                CREATE TABLE registered_agents (
                    id TEXT PRIMARY KEY NOT NULL,
                    source TEXT NOT NULL,
                    data TEXT NOT NULL
                )
                """)
        }
        migrator.registerMigration("v13: access reviews") { db in
            // Review campaigns and their items (SPEC §18), each stored whole. Who answers for
            // an item is kept beside it, so a reviewer's page reads only their items.
            try db.execute(sql: """
                CREATE TABLE review_campaigns (
                    id TEXT PRIMARY KEY NOT NULL,
                    data TEXT NOT NULL
                );
                CREATE TABLE review_items (
                    campaign TEXT NOT NULL REFERENCES review_campaigns(id),
                    number INTEGER NOT NULL,
                    data TEXT NOT NULL,
                    PRIMARY KEY (campaign, number)
                );
                CREATE TABLE review_reviewers (
                    campaign TEXT NOT NULL,
                    reviewer TEXT NOT NULL,
                    number INTEGER NOT NULL,
                    PRIMARY KEY (campaign, reviewer, number),
                    FOREIGN KEY (campaign, number) REFERENCES review_items(campaign, number)
                );
                """)
        }
        return migrator
    }
}
