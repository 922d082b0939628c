import Foundation
import Testing

/// A graceful shutdown (SIGTERM) of the daemon's service group: it says so first, then stops
/// the services in reverse order, the log checkpointer last.
@Suite(.serialized) struct GracefulShutdownTests {
    /// `STOPPING=1` and the log line go out as the shutdown begins, before any listener stops,
    /// not once everything has stopped.
    @Test func theShutdownIsAnnouncedBeforeAnyServiceStops() async throws {
        try await InProcessDaemon.run(config: "agents: []\npolicies: []\n", logLevel: .debug) { daemon in
            try await daemon.shutDown()
            // The group logs, at debug, each service it tells to shut down.
            let lines = daemon.log().split(separator: "\n")
            let announced = try #require(lines.firstIndex { $0.contains("shutting down: no new requests") }, "\(daemon.log())")
            let stopping = lines.enumerated().filter { $0.element.contains("Triggering graceful shutdown for service") }
            let firstListener = try #require(stopping.first { $0.element.contains("Application") }, "\(daemon.log())")
            #expect(announced < firstListener.offset, "\(daemon.log())")
            #expect(stopping.first?.element.contains("StoppingNotifier") == true, "\(daemon.log())")
            #expect(daemon.notify.messages().contains { $0.contains("STOPPING=1") })
        }
    }

    /// The store's write-ahead log is checkpointed by a service of the group (commits never
    /// checkpoint it themselves), and the shutdown ends that service after it has copied what
    /// the stopped writers left.
    @Test func theLogIsCheckpointedInsideTheGroupAndOnceMoreOnAGracefulShutdown() async throws {
        let folder = try DaemonProcess.folder(files: ["hr.secret": "secret-one"])
        try await InProcessDaemon.run(config: OperatorCLITests.withPolicy, folder: folder) { daemon in
            let store = daemon.store.path
            #expect(try await eventually { try await daemon.get("/readyz").0 == 200 }, "the first reconciliation is done")

            for (user, number) in OperatorCLITests.staff {
                let event = HREventLines.event("evt-join-\(user)", "joiner", user: user, employeeNumber: number)
                #expect(try await daemon.postHR(event).status == 200)
            }
            // Only the checkpointer copies the log: the writer's automatic checkpoint is off.
            #expect(
                await eventually { LogProgress(store: store).map { $0.checkpointed > 0 } ?? false },
                "the running group checkpointed the log: \(String(describing: LogProgress(store: store)))")

            // A commit just before the shutdown, then the group stops as SIGTERM stops it.
            let leaver = HREventLines.event("evt-leave-bob", "leaver", user: "bob", employeeNumber: 1003)
            #expect(try await daemon.postHR(leaver).status == 200)
            try await daemon.shutDown(timeout: .seconds(15))

            // Every service has returned, the checkpointer last: the whole log is in the
            // database file, though the store is still open.
            let progress = try #require(LogProgress(store: store))
            #expect(progress.frames > 0, "the leaver's commit is in the log: \(progress)")
            #expect(progress.checkpointed == progress.frames, "\(progress)")
            #expect(!daemon.log().contains("critical"), "\(daemon.log())")
        }
    }
}

/// How far the write-ahead log of the SQLite database at `store` has been copied into the
/// database file, read from its WAL index (`-shm`) without touching the database: `mxFrame`
/// of the index header (offset 16) and `nBackfill` of the checkpoint information after the
/// header's two copies (offset 96), in native byte order (SQLite's wal.c).
struct LogProgress: CustomStringConvertible {
    /// Frames in the log.
    var frames: UInt32
    /// Frames of it copied into the database file.
    var checkpointed: UInt32

    init?(store: String) {
        guard let index = FileManager.default.contents(atPath: store + "-shm"), index.count >= 100 else { return nil }
        frames = index.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 16, as: UInt32.self) }
        checkpointed = index.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 96, as: UInt32.self) }
    }

    var description: String { "\(checkpointed) of \(frames) log frames checkpointed" }
}
