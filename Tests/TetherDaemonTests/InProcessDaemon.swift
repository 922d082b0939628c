import Foundation
import Logging
import Prometheus
import ServiceLifecycle
import Synchronization
import TetherConfig
import TetherCore
import TetherDaemon
import TetherStore

/// `tether serve`'s services (``DaemonServices``) built from a configuration in a temporary
/// folder and run in this test process: for tests whose subject is what the daemon does
/// (HTTP, SCIM, HR, reloads, the CLI over the admin socket), not its process.
///
/// It binds port 0 (no race for a free port), logs to memory, handles no signals, and is
/// shut down gracefully, so a test also sees what a clean stop leaves behind.
final class InProcessDaemon: DaemonUnderTest, Sendable {
    let folder: URL
    let configPath: String
    let socketPath: String
    /// The port the public listener bound.
    let port: Int
    let environment: [String: String] = ProcessInfo.processInfo.environment
    /// The running services: the engine and state for assertions, the group to shut down.
    let services: DaemonServices
    /// The store the services write to, still open after a shutdown.
    let store: SQLiteStateStore
    /// What the daemon tells systemd.
    let notify: NotifySocket
    private let lines: LogLines
    private let running: Task<Result<Void, any Error>, Never>

    private init(
        folder: URL, services: DaemonServices, store: SQLiteStateStore, notify: NotifySocket, port: Int, lines: LogLines,
        running: Task<Result<Void, any Error>, Never>
    ) {
        self.folder = folder
        configPath = Self.configPath(in: folder)
        socketPath = Self.socketPath(in: folder)
        self.services = services
        self.store = store
        self.notify = notify
        self.port = port
        self.lines = lines
        self.running = running
    }

    /// Builds the daemon from `body` (YAML without store/http/admin, which are completed as
    /// ``DaemonProcess`` completes them; with `complete` false, a whole configuration) in
    /// `folder`, runs `test` against it once it is ready, then shuts it down gracefully,
    /// whether `test` threw or not.
    static func run(
        config body: String, folder: URL? = nil, http: String = "", logLevel: Logger.Level = .info,
        beforeDecisionWrite: (@Sendable (Int) async -> Void)? = nil, engineClock: (any WallClock)? = nil,
        complete: Bool = true, test: (InProcessDaemon) async throws -> Void
    ) async throws {
        let daemon = try await start(
            config: body, folder: folder, http: http, logLevel: logLevel, beforeDecisionWrite: beforeDecisionWrite,
            engineClock: engineClock, complete: complete)
        do {
            try await test(daemon)
        } catch {
            try? await daemon.shutDown()
            throw error
        }
        try await daemon.shutDown()
    }

    /// Builds the services, runs their group in a task and waits until both listeners are bound.
    static func start(
        config body: String, folder: URL? = nil, http: String = "", logLevel: Logger.Level = .info,
        beforeDecisionWrite: (@Sendable (Int) async -> Void)? = nil, engineClock: (any WallClock)? = nil,
        complete: Bool = true
    ) async throws -> InProcessDaemon {
        let folder = try folder ?? DaemonProcess.folder()
        if complete {
            try write(config: body, in: folder, http: http)
        } else {
            // A whole configuration: its store, listener (port 0) and socket (in `folder`) as given.
            try body.write(toFile: configPath(in: folder), atomically: true, encoding: .utf8)
        }
        let loaded = try ConfigurationLoader.load(path: configPath(in: folder))
        let configuration = loaded.configuration
        let lines = LogLines()
        var logger = Logger(label: "tether") { KeyValueLogHandler(label: $0, write: lines.append) }
        logger.logLevel = logLevel
        let notify = try NotifySocket(folder: folder)
        let store = try SQLiteStateStore(
            path: configuration.store.sqlite, syncEachCommit: configuration.store.synchronous == .full)
        // A registry of its own, not bootstrapped into swift-metrics: that is once per process,
        // and several daemons run in this one. /metrics shows the gauges read from the store.
        var options = DaemonServices.Options(handlesSignals: false, testHooks: true)
        options.beforeDecisionWrite = beforeDecisionWrite
        if let engineClock { options.engineClock = engineClock }
        let services = try await DaemonServices.build(
            loaded: loaded, configPath: configPath(in: folder), credentials: ListenerCredentials(for: configuration),
            store: store, registry: PrometheusCollectorRegistry(),
            notifier: SystemdNotifier(environment: ["NOTIFY_SOCKET": notify.path]), logger: logger,
            options: options)
        let ended = Note()
        let running = Task {
            let result = await Result(catching: { try await services.run() })
            ended.write("the services ended: \(result)")
            return result
        }
        _ = await eventually(timeout: 30) { await services.listeners.isReady || ended.text != nil }
        guard await services.listeners.isReady, let port = await services.listeners.port(of: "http") else {
            await services.group.triggerGracefulShutdown()
            running.cancel()
            throw DaemonTestError("the daemon never bound its listeners (\(ended.text ?? "still running")); log:\n\(lines.text)")
        }
        return InProcessDaemon(
            folder: folder, services: services, store: store, notify: notify, port: port, lines: lines, running: running)
    }

    /// Shuts the group down gracefully, as SIGTERM does, and waits until every service has
    /// returned; throws what the group threw, or when it takes longer than `timeout`.
    func shutDown(timeout: Duration = .seconds(30)) async throws {
        await services.group.triggerGracefulShutdown()
        let running = running
        let late = Note()
        let deadline = Task {
            guard (try? await Task.sleep(for: timeout)) != nil else { return }
            late.write("cancelled")
            running.cancel()
        }
        defer { deadline.cancel() }
        let result = await running.value
        guard late.text == nil else {
            throw DaemonTestError("the services took longer than \(timeout) to shut down gracefully; log:\n\(log())")
        }
        try result.get()
    }

    func log() -> String { lines.text }

    /// Replaces the configuration file (for reload tests); the listener stays at port 0 in it,
    /// as started, so only what `body` and `http` change differs.
    func rewrite(config body: String, http: String = "") throws {
        try Self.write(config: body, in: folder, http: http)
    }

    private static func write(config body: String, in folder: URL, http: String) throws {
        try DaemonProcess.write(config: body, to: configPath(in: folder), port: 0, socket: socketPath(in: folder), http: http)
    }

    private static func configPath(in folder: URL) -> String { folder.appendingPathComponent("tether.yaml").path }
    private static func socketPath(in folder: URL) -> String { folder.appendingPathComponent("admin.sock").path }
}

/// Lines written from any thread, read as one text.
final class LogLines: Sendable {
    private let lines = Mutex<[String]>([])

    func append(_ line: String) { lines.withLock { $0.append(line) } }

    var text: String { lines.withLock { $0.joined() } }
}

/// A text written once from one task and read from another: what happened, or nil.
final class Note: Sendable {
    private let value = Mutex<String?>(nil)

    func write(_ text: String) { value.withLock { $0 = text } }

    var text: String? { value.withLock { $0 } }
}

extension Result where Failure == any Error {
    /// The outcome of `body`, thrown or returned.
    init(catching body: () async throws -> Success) async {
        do {
            self = .success(try await body())
        } catch {
            self = .failure(error)
        }
    }
}
