import GRDB

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
final class WALCheckpointer: Sendable {
    private let wake: AsyncStream<Void>.Continuation

    init(path: String, interval: Duration = .seconds(1)) {
        let (stream, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        self.wake = wake
        Task.detached(priority: .utility) {
            var connection: DatabaseQueue?
            for await _ in stream {
                do {
                    if connection == nil { connection = try DatabaseQueue(path: path) }
                    try await connection?.writeWithoutTransaction { db in _ = try db.checkpoint(.passive) }
                } catch {
                    // The next commit wakes it again; until then the log only grows.
                }
                // Commits made meanwhile wait for the next checkpoint: at most one per interval.
                try? await Task.sleep(for: interval)
            }
        }
    }

    /// Called after each commit: a checkpoint follows soon.
    func committed() { wake.yield() }

    deinit { wake.finish() }
}

extension SQLiteStateStore {
    /// Copies the whole log into the database file and syncs it, waiting for a background
    /// checkpoint in progress: what a commit leaves for ``WALCheckpointer``, done now.
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
