import GRDB
import ServiceLifecycle

/// Copies the write-ahead log into the database file on a connection of its own, so that no
/// commit waits for it.
///
/// SQLite's automatic checkpoint runs inside the commit that grows the log past 1,000 pages:
/// that commit then copies the pages and syncs the database file, and an HR leaver that
/// happens to be that commit answers late. The writer's automatic checkpoint is turned off
/// instead, and after a commit this checkpointer runs a PASSIVE checkpoint, which never
/// blocks the writer nor readers, at most once per `interval`. With `synchronous = FULL`
/// (the default) each commit has already synced the log; with `NORMAL` a commit is atomic
/// and survives a crash of the process, and the log is synced to disk when it is
/// checkpointed, within `interval` of a commit rather than once 1,000 pages have built up.
///
/// It is a `Service`: the owner of the store runs it once, in the service group beside the
/// store's writers and shut down after them. A graceful shutdown ends it, after a last
/// checkpoint when there were commits. Until it runs, commits leave the log to grow (SQLite
/// still checkpoints it when the store's last connection closes).
public final class WALCheckpointer: Service, Sendable {
    private let path: String
    private let interval: Duration
    private let wakes: AsyncStream<Void>
    private let wake: AsyncStream<Void>.Continuation

    init(path: String, interval: Duration = .seconds(1)) {
        self.path = path
        self.interval = interval
        (wakes, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Checkpoints after commits until a graceful shutdown (or cancellation) ends it.
    public func run() async {
        var connection: DatabaseQueue?
        func checkpoint() async {
            do {
                if connection == nil { connection = try DatabaseQueue(path: path) }
                try await connection?.writeWithoutTransaction { db in _ = try db.checkpoint(.passive) }
            } catch {
                // The next commit wakes it again; until then the log only grows.
            }
        }
        await withGracefulShutdownHandler {
            for await _ in wakes {
                await checkpoint()
                // Commits made meanwhile wait for the next checkpoint: at most one per interval.
                // A graceful shutdown cuts the wait short.
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
            }
        } onGracefulShutdown: {
            self.wake.finish()
        }
        // The writers stopped before this service did: copy what they left in the log now,
        // rather than leave it to the next start.
        if connection != nil { await checkpoint() }
    }

    /// Called after each commit: a checkpoint follows soon.
    func committed() { wake.yield() }

    deinit { wake.finish() }
}

extension SQLiteStateStore: DaemonStore {
    /// The service that checkpoints this store's log after its commits (see ``WALCheckpointer``).
    public var logCheckpointer: WALCheckpointer { checkpointer }

    public var services: [any Service] { [checkpointer] }

    public var location: String { path }

    /// Nothing to release: the connections close with the store.
    public func close() async {}

    /// Copies the whole log into the database file and syncs it, waiting for a checkpoint of
    /// ``WALCheckpointer`` in progress: what a commit leaves for it, done now.
    public func checkpointFully(timeout: Duration = .seconds(600)) async throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(60)
        let deadline = ContinuousClock.now + timeout
        do {
            let connection = try DatabaseQueue(path: path, configuration: configuration)
            while true {
                do {
                    try await connection.writeWithoutTransaction { db in _ = try db.checkpoint(.truncate) }
                    return
                } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY && ContinuousClock.now < deadline {
                    // Another checkpoint holds the log (SQLite does not wait for it): poll until it is done.
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
        } catch {
            throw StoreError(.write, "the log of the store at \(path) could not be checkpointed", underlying: error)
        }
    }
}
