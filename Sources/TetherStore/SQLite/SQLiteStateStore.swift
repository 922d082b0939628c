import Foundation
import GRDB
import TetherCore

/// The embedded backend: SQLite in WAL mode through GRDB.
///
/// Constraints and uniqueness live in the schema; migrations are named and append-only.
/// Audit rows are protected by triggers against update and delete.
public final class SQLiteStateStore: StateStore {
    let pool: DatabasePool
    /// Checkpoints the log after commits, off the writer's commit path.
    let checkpointer: WALCheckpointer
    /// The file the store lives in.
    public let path: String

    /// From this many rows (plan steps and audit records) a commit is a bulk commit: a larger
    /// page cache, and the secondary indexes of empty tables built after the rows are in.
    let bulkCommitRows: Int

    /// Opens (creating if needed) the store at `path` and migrates it to the current schema.
    /// - Parameter syncEachCommit: sync the log at every commit (`synchronous = FULL`, the
    ///   default), so an acknowledged commit survives a power loss; otherwise (`NORMAL`) a
    ///   commit survives a crash of the process at once and a power loss once checkpointed
    ///   (``WALCheckpointer``).
    /// - Parameter upgrading: called, before it starts, with the steps an upgrade of an
    ///   existing store will take (a store written by an older version); some rebuild a table,
    ///   which takes minutes for millions of rows. Not called for a new store.
    public init(
        path: String, syncEachCommit: Bool = true, bulkCommitRows: Int = SQLiteStateStore.defaultBulkCommitRows,
        upgrading: (([String]) -> Void)? = nil
    ) throws {
        self.path = path
        self.bulkCommitRows = bulkCommitRows
        do {
            let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            var configuration = Configuration()
            configuration.busyMode = .timeout(5)
            configuration.label = "tether"
            configuration.prepareDatabase { db in
                // The writer inserts into indexes keyed by hashes (grant ids, audit hashes), which
                // touch pages all over the file: a larger cache keeps a bulk commit off the disk.
                // It grows only as pages are used; readers keep SQLite's default.
                if !db.configuration.readonly {
                    try db.execute(sql: "PRAGMA cache_size = -65536")
                    // Checkpoints run on their own connection (``WALCheckpointer``), never in a commit.
                    try db.execute(sql: "PRAGMA wal_autocheckpoint = 0")
                }
            }
            pool = try DatabasePool(path: path, configuration: configuration)
            // After the pool's own WAL set-up, which chooses NORMAL: the writer keeps this.
            try pool.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA synchronous = \(syncEachCommit ? "FULL" : "NORMAL")")
            }
            if let upgrading {
                let applied = try pool.read { try Self.migrator.appliedIdentifiers($0) }
                let pending = Self.migrator.migrations.filter { !applied.contains($0) }
                if !applied.isEmpty, !pending.isEmpty { upgrading(pending) }
            }
            try Self.migrator.migrate(pool)
            checkpointer = WALCheckpointer(path: path)
        } catch {
            throw StoreError(.open, "cannot open the store at \(path)", underlying: error)
        }
    }

    /// Opens an existing store for reading only: nothing is created, migrated or written, so
    /// `tether audit` can look at a store without changing it, whether or not the daemon runs.
    /// Throws ``StoreError`` naming `path` when it is missing, unreadable, not a database or
    /// not yet migrated to this version's schema.
    public init(readingAt path: String) throws {
        self.path = path
        bulkCommitRows = Self.defaultBulkCommitRows
        pool = try Self.openReadOnly(path, what: "the store", label: "tether-readonly", migrator: Self.migrator)
        checkpointer = WALCheckpointer(path: path)
    }

    /// Opens the existing SQLite file at `path` read-only, refusing, with ``StoreError`` naming
    /// `what` and `path`, a file that is missing (nothing is created), not a regular file,
    /// unreadable, or not migrated by `migrator` to this version's schema.
    static func openReadOnly(_ path: String, what: String, label: String, migrator: DatabaseMigrator) throws -> DatabasePool {
        var info = stat()
        guard stat(path, &info) == 0 else {
            let reason = errno == ENOENT ? "no such file; nothing was created" : String(cString: strerror(errno)).lowercased()
            throw StoreError(.open, "cannot open \(what) at \(path): \(reason)")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw StoreError(.open, "cannot open \(what) at \(path): not a regular file")
        }
        guard access(path, R_OK) == 0 else {
            throw StoreError(.open, "cannot open \(what) at \(path): \(String(cString: strerror(errno)).lowercased())")
        }
        do {
            var configuration = Configuration()
            configuration.readonly = true
            configuration.busyMode = .timeout(5)
            configuration.label = label
            let pool = try DatabasePool(path: path, configuration: configuration)
            guard try pool.read({ try migrator.hasCompletedMigrations($0) }) else {
                throw StoreError(
                    .open, "\(what) at \(path) is not at this version's schema; start `tether serve` once to migrate it")
            }
            return pool
        } catch let error as StoreError {
            throw error
        } catch {
            throw StoreError(.open, "cannot open \(what) at \(path)", underlying: error)
        }
    }

    /// Runs a read, mapping failures to ``StoreError``.
    func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await pool.read(body)
        } catch let error as StoreError {
            throw error
        } catch let cancelled as CancellationError {
            // A cancelled task's read or write did not happen; that is not a store failure.
            throw cancelled
        } catch {
            throw StoreError(.read, "reading the store at \(path) failed", underlying: error)
        }
    }
}
