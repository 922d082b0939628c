import Foundation
import TetherCore

extension PostgresStateStore {
    /// Named, append-only migrations. Never edit a shipped migration: add the next one.
    ///
    /// The first is the SQLite backend's schema at its `v13`, in PostgreSQL's types: the same
    /// tables, columns and stored texts, so rows move between the two unchanged. Text sorts
    /// and compares by bytes (`COLLATE "C"`) as in SQLite, whatever the database's locale.
    /// Unquoted names fold to lower case in PostgreSQL; statements name columns as SQLite's do.
    static let migrations: [(name: String, sql: String)] = [
        (
            "v1: the store as SQLite's v13",
            """
            CREATE TABLE identities (
                id TEXT COLLATE "C" PRIMARY KEY,
                userName TEXT COLLATE "C" NOT NULL,
                emailLower TEXT COLLATE "C",
                employeeNumber TEXT COLLATE "C",
                status TEXT COLLATE "C" NOT NULL CHECK (status IN ('active', 'suspended', 'terminated')),
                data TEXT COLLATE "C" NOT NULL
            );
            CREATE INDEX identities_userName ON identities(userName, id);
            CREATE INDEX identities_emailLower ON identities(emailLower);
            CREATE INDEX identities_employeeNumber ON identities(employeeNumber);
            CREATE INDEX identities_status ON identities(status);

            CREATE TABLE identity_links (
                source TEXT COLLATE "C" NOT NULL,
                externalId TEXT COLLATE "C" NOT NULL,
                identity TEXT COLLATE "C" NOT NULL REFERENCES identities(id) ON DELETE CASCADE,
                PRIMARY KEY (source, externalId)
            );
            CREATE INDEX identity_links_identity ON identity_links(identity);

            CREATE TABLE directory_lags (
                identity TEXT COLLATE "C" PRIMARY KEY REFERENCES identities(id) ON DELETE CASCADE,
                data TEXT COLLATE "C" NOT NULL
            );

            CREATE TABLE grants (
                id TEXT COLLATE "C" PRIMARY KEY,
                subject TEXT COLLATE "C" NOT NULL,
                agent TEXT COLLATE "C" NOT NULL,
                scope TEXT COLLATE "C" NOT NULL,
                resource TEXT COLLATE "C" NOT NULL,
                policy TEXT COLLATE "C" NOT NULL,
                lineage TEXT COLLATE "C" NOT NULL,
                grantedAt TEXT COLLATE "C" NOT NULL,
                auditSeq BIGINT,
                UNIQUE (subject, agent, scope, resource)
            );
            CREATE INDEX grants_agent ON grants(agent);

            CREATE TABLE agent_states (
                agent TEXT COLLATE "C" PRIMARY KEY,
                data TEXT COLLATE "C" NOT NULL
            );

            CREATE TABLE events (
                id TEXT COLLATE "C" PRIMARY KEY,
                source TEXT COLLATE "C" NOT NULL,
                kind TEXT COLLATE "C" NOT NULL,
                identity TEXT COLLATE "C",
                status TEXT COLLATE "C" NOT NULL CHECK (status IN ('applied', 'stale', 'scheduled', 'rejected')),
                receivedAt TEXT COLLATE "C" NOT NULL,
                payload TEXT COLLATE "C" NOT NULL
            );

            CREATE TABLE scheduled_leavers (
                event TEXT COLLATE "C" PRIMARY KEY REFERENCES events(id),
                effectiveAt TEXT COLLATE "C" NOT NULL,
                done BIGINT NOT NULL DEFAULT 0
            );
            CREATE INDEX scheduled_leavers_due ON scheduled_leavers(done, effectiveAt);

            CREATE TABLE plans (
                id TEXT COLLATE "C" PRIMARY KEY,
                scope TEXT COLLATE "C" NOT NULL,
                status TEXT COLLATE "C" NOT NULL CHECK (status IN ('held', 'approved', 'rejected')),
                reason TEXT COLLATE "C" NOT NULL,
                createdAt TEXT COLLATE "C" NOT NULL,
                resolvedBy TEXT COLLATE "C",
                body TEXT COLLATE "C" NOT NULL,
                pendingIdentities TEXT COLLATE "C"
            );
            CREATE INDEX plans_held_scope ON plans(scope) WHERE status = 'held';

            CREATE TABLE audit (
                seq BIGINT PRIMARY KEY,
                hash TEXT COLLATE "C" NOT NULL,
                prev TEXT COLLATE "C" NOT NULL,
                action TEXT COLLATE "C" NOT NULL,
                actor TEXT COLLATE "C" NOT NULL,
                subject TEXT COLLATE "C",
                agent TEXT COLLATE "C",
                grantId TEXT COLLATE "C",
                time TEXT COLLATE "C" NOT NULL,
                line TEXT COLLATE "C" NOT NULL
            );
            CREATE INDEX audit_subject ON audit(subject);
            CREATE INDEX audit_agent ON audit(agent);
            CREATE INDEX audit_grant ON audit(grantId);

            CREATE FUNCTION tether_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION '% rows are never changed or removed (% refused)', TG_TABLE_NAME, TG_OP;
            END
            $$;
            CREATE TRIGGER audit_is_append_only BEFORE UPDATE OR DELETE ON audit
                FOR EACH ROW EXECUTE FUNCTION tether_append_only();
            CREATE TRIGGER audit_is_never_truncated BEFORE TRUNCATE ON audit
                FOR EACH STATEMENT EXECUTE FUNCTION tether_append_only();

            CREATE TABLE outbox (
                id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                target TEXT COLLATE "C" NOT NULL,
                grantId TEXT COLLATE "C" NOT NULL,
                operation TEXT COLLATE "C" NOT NULL CHECK (operation IN ('put', 'delete')),
                payload TEXT COLLATE "C" NOT NULL,
                createdAt TEXT COLLATE "C" NOT NULL,
                attempts BIGINT NOT NULL DEFAULT 0,
                nextAttemptAt TEXT COLLATE "C",
                lastError TEXT COLLATE "C",
                lastAttemptAt TEXT COLLATE "C"
            );
            CREATE INDEX outbox_target ON outbox(target, id);
            CREATE INDEX outbox_target_operation ON outbox(target, operation, id);
            CREATE INDEX outbox_target_grant ON outbox(target, grantId, id);
            CREATE INDEX outbox_target_retry ON outbox(target, nextAttemptAt);
            CREATE INDEX outbox_target_failed ON outbox(target, lastAttemptAt) WHERE lastAttemptAt IS NOT NULL;

            CREATE TABLE source_states (
                source TEXT COLLATE "C" PRIMARY KEY,
                cookie BYTEA,
                data TEXT COLLATE "C" NOT NULL
            );

            CREATE TABLE scim_resources (
                id TEXT COLLATE "C" PRIMARY KEY,
                kind TEXT COLLATE "C" NOT NULL CHECK (kind IN ('User', 'Group')),
                userName TEXT COLLATE "C",
                userNameKey TEXT COLLATE "C" UNIQUE,
                displayName TEXT COLLATE "C",
                displayNameKey TEXT COLLATE "C",
                externalId TEXT COLLATE "C",
                version TEXT COLLATE "C" NOT NULL,
                created TEXT COLLATE "C" NOT NULL,
                lastModified TEXT COLLATE "C" NOT NULL,
                body TEXT COLLATE "C" NOT NULL,
                CHECK ((kind = 'User') = (userNameKey IS NOT NULL))
            );
            CREATE INDEX scim_resources_order ON scim_resources(kind, created, id);
            CREATE INDEX scim_resources_externalId ON scim_resources(kind, externalId);
            CREATE INDEX scim_resources_displayName ON scim_resources(kind, displayNameKey);

            CREATE TABLE scim_members (
                groupId TEXT COLLATE "C" NOT NULL REFERENCES scim_resources(id) ON DELETE CASCADE,
                memberId TEXT COLLATE "C" NOT NULL REFERENCES scim_resources(id) ON DELETE CASCADE,
                position BIGINT NOT NULL,
                PRIMARY KEY (groupId, memberId)
            );
            CREATE INDEX scim_members_member ON scim_members(memberId);

            CREATE TABLE scim_pending_members (
                groupId TEXT COLLATE "C" NOT NULL REFERENCES scim_resources(id) ON DELETE CASCADE,
                value TEXT COLLATE "C" NOT NULL,
                position BIGINT NOT NULL,
                PRIMARY KEY (groupId, value)
            );
            CREATE INDEX scim_pending_members_value ON scim_pending_members(value);

            CREATE TABLE safety_windows (
                source TEXT COLLATE "C" PRIMARY KEY,
                data TEXT COLLATE "C" NOT NULL
            );

            CREATE TABLE audit_checkpoints (
                seq BIGINT PRIMARY KEY,
                hash TEXT COLLATE "C" NOT NULL,
                time TEXT COLLATE "C" NOT NULL,
                signature TEXT COLLATE "C" NOT NULL,
                key TEXT COLLATE "C" NOT NULL
            );
            CREATE TRIGGER audit_checkpoints_are_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
                FOR EACH ROW EXECUTE FUNCTION tether_append_only();
            CREATE TRIGGER audit_checkpoints_are_never_truncated BEFORE TRUNCATE ON audit_checkpoints
                FOR EACH STATEMENT EXECUTE FUNCTION tether_append_only();
            CREATE TABLE audit_checkpoint_deliveries (
                target TEXT COLLATE "C" PRIMARY KEY,
                seq BIGINT NOT NULL
            );

            -- The order rows were made in stands in for SQLite's rowid.
            CREATE TABLE exceptions (
                ord BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                id TEXT COLLATE "C" NOT NULL UNIQUE,
                subject TEXT COLLATE "C" NOT NULL,
                data TEXT COLLATE "C" NOT NULL
            );
            CREATE INDEX exceptions_by_subject ON exceptions(subject);

            CREATE TABLE grant_usage (
                grantId TEXT COLLATE "C" PRIMARY KEY,
                lastUsed BIGINT NOT NULL
            );
            CREATE TABLE agent_usage (
                agent TEXT COLLATE "C" PRIMARY KEY,
                lastUsed BIGINT NOT NULL
            );
            CREATE FUNCTION tether_grant_usage_goes_with_grant() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                DELETE FROM grant_usage WHERE grantId = OLD.id;
                RETURN OLD;
            END
            $$;
            CREATE TRIGGER grant_usage_goes_with_grant AFTER DELETE ON grants
                FOR EACH ROW EXECUTE FUNCTION tether_grant_usage_goes_with_grant();

            CREATE TABLE registered_agents (
                ord BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
                id TEXT COLLATE "C" PRIMARY KEY,
                source TEXT COLLATE "C" NOT NULL,
                data TEXT COLLATE "C" NOT NULL
            );

            CREATE TABLE review_campaigns (
                ord BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
                id TEXT COLLATE "C" PRIMARY KEY,
                data TEXT COLLATE "C" NOT NULL
            );
            CREATE TABLE review_items (
                campaign TEXT COLLATE "C" NOT NULL REFERENCES review_campaigns(id),
                number BIGINT NOT NULL,
                data TEXT COLLATE "C" NOT NULL,
                PRIMARY KEY (campaign, number)
            );
            CREATE TABLE review_reviewers (
                campaign TEXT COLLATE "C" NOT NULL,
                reviewer TEXT COLLATE "C" NOT NULL,
                number BIGINT NOT NULL,
                PRIMARY KEY (campaign, reviewer, number),
                FOREIGN KEY (campaign, number) REFERENCES review_items(campaign, number)
            );
            """
        ),
        (
            "v2: leadership",
            """
            -- One row: which node leads, under which epoch, until when (the server's clock).
            CREATE TABLE tether_lease (
                id BIGINT PRIMARY KEY CHECK (id = 1),
                holder TEXT COLLATE "C" NOT NULL,
                address TEXT COLLATE "C" NOT NULL,
                epoch BIGINT NOT NULL,
                expiresAt TIMESTAMPTZ NOT NULL
            );
            -- What each node last said of itself: its role, the revision its check index is
            -- at, and where it listens; for `tether status`.
            CREATE TABLE tether_nodes (
                node TEXT COLLATE "C" PRIMARY KEY,
                address TEXT COLLATE "C" NOT NULL,
                role TEXT COLLATE "C" NOT NULL,
                revision BIGINT NOT NULL,
                seenAt TIMESTAMPTZ NOT NULL
            );
            """
        ),
        (
            "v3: the decision log",
            """
            -- Every /v1/check answer of every node (SPEC §16), written in batches with COPY and
            -- never in a grant's transaction. moment: the answer's time in milliseconds since
            -- 1970, which the decision id carries too; there is no key but the time's index,
            -- and a decision is found by its id's time and then its id.
            CREATE TABLE decisions (
                moment BIGINT NOT NULL,
                id TEXT COLLATE "C" NOT NULL,
                subject TEXT COLLATE "C" NOT NULL,
                agent TEXT COLLATE "C" NOT NULL,
                scope TEXT COLLATE "C" NOT NULL,
                resource TEXT COLLATE "C" NOT NULL,
                allowed BOOLEAN NOT NULL,
                grantID TEXT COLLATE "C",
                policy TEXT COLLATE "C",
                policySet TEXT COLLATE "C" NOT NULL,
                revision BIGINT NOT NULL,
                caller TEXT COLLATE "C" NOT NULL
            );
            CREATE INDEX decisions_by_moment ON decisions (moment);
            CREATE INDEX decisions_by_subject ON decisions (subject, moment);
            CREATE INDEX decisions_by_agent ON decisions (agent, moment);
            """
        ),
    ]

    /// An arbitrary key for the advisory lock migrations run under (`tether` in ASCII).
    static let migrationLock: Int64 = 0x7465_7468_6572

    /// Applies the migrations not yet applied, in one transaction, under a transaction-scoped
    /// advisory lock: a second daemon starting at the same time waits and then finds them done.
    func migrate() async throws {
        try await transaction { session in
            try session.execute("SELECT pg_advisory_xact_lock(?)", [Self.migrationLock])
            try session.execute("CREATE TABLE IF NOT EXISTS tether_migrations (name TEXT PRIMARY KEY, appliedAt TEXT NOT NULL)")
            let applied = Set(try session.column(String.self, "SELECT name FROM tether_migrations"))
            let known = Set(Self.migrations.map(\.name))
            if let unknown = applied.subtracting(known).sorted().first {
                throw StoreError(
                    .open,
                    "the database was migrated by a newer version of Tether (migration \"\(unknown)\"); run that version or a newer one")
            }
            for migration in Self.migrations where !applied.contains(migration.name) {
                try session.script(migration.sql)
                try session.execute(
                    "INSERT INTO tether_migrations (name, appliedAt) VALUES (?, ?)", [migration.name, Timestamp.string(Date())])
            }
        }
    }

    /// Refuses a database that is not at this version's schema, changing nothing.
    func checkMigrated() async throws {
        let applied: Set<String> = try await transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") { session in
            guard try session.value(Bool.self, "SELECT to_regclass('tether_migrations') IS NOT NULL") == true else { return [] }
            return Set(try session.column(String.self, "SELECT name FROM tether_migrations"))
        }
        guard Self.migrations.allSatisfy({ applied.contains($0.name) }) else {
            throw StoreError(
                .open, "the database at \(settings.url) is not a Tether store at this version's schema; start `tether serve` once to create or migrate it")
        }
    }
}
