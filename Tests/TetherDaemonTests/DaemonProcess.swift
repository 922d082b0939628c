import Foundation
import SlapdHarness
#if canImport(Glibc)
import Glibc
#endif

/// A datagram socket standing in for systemd's notify socket: the daemon under test sends
/// READY=1, STATUS=, WATCHDOG=1 … here.
final class NotifySocket: @unchecked Sendable {
    let path: String
    private let fd: Int32
    private let lock = NSLock()
    private var received: [String] = []

    init(folder: URL) throws {
        path = folder.appendingPathComponent("notify.sock").path
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8)) }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0 else { throw POSIXError(.init(rawValue: errno) ?? .EINVAL) }
        // A daemon under test may run as another user (see ``DaemonProcess/launcher``).
        chmod(path, 0o666)
    }

    deinit { close(fd) }

    /// Every datagram received so far, draining the socket first.
    func messages() -> [String] {
        drain(timeoutMilliseconds: 0)
        return lock.withLock { received }
    }

    /// Waits until a datagram satisfies `predicate`, returning it; nil at the deadline. The wait
    /// blocks a thread of its own, never one of the cooperative pool.
    func wait(timeout: TimeInterval = 20, for predicate: @escaping @Sendable (String) -> Bool) async -> String? {
        (try? await offPool { self.waitBlocking(timeout: timeout, for: predicate) }) ?? nil
    }

    private func waitBlocking(timeout: TimeInterval, for predicate: (String) -> Bool) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        var seen = 0
        while Date() < deadline {
            drain(timeoutMilliseconds: 100)
            let all = lock.withLock { received }
            if let match = all[seen...].first(where: predicate) { return match }
            seen = all.count
        }
        return nil
    }

    /// Clears what was received, so later waits see only new datagrams.
    func reset() {
        drain(timeoutMilliseconds: 0)
        lock.withLock { received.removeAll() }
    }

    private func drain(timeoutMilliseconds: Int32) {
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        var wait = timeoutMilliseconds
        while poll(&descriptor, 1, wait) > 0 {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = recv(fd, &buffer, buffer.count, 0)
            guard count > 0 else { break }
            let text = String(decoding: buffer[0..<count], as: UTF8.self)
            lock.withLock { received.append(text) }
            wait = 0
        }
    }
}

/// The real `tether serve` binary, started with its own config, store and sockets: for tests
/// whose subject is the process (crashes, signals, systemd, exit codes). Others run the daemon
/// in the test process (``InProcessDaemon``).
final class DaemonProcess: DaemonUnderTest, @unchecked Sendable {
    let folder: URL
    let configPath: String
    let socketPath: String
    /// The public listener's port; chosen again if another test took it first.
    private(set) var port: Int
    /// The YAML the harness completes (see ``write(config:to:port:socket:http:admin:)``).
    private var configBody: String
    let notify: NotifySocket
    let logPath: String
    private(set) var process: Process
    /// The end of ``process``, awaited without blocking a thread.
    private var ended: ChildExit
    let environment: [String: String]

    static var binary: URL {
        let bundle = URL(fileURLWithPath: ProcessInfo.processInfo.arguments[0])
        var folder = bundle.deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: folder.appendingPathComponent("tether").path) && folder.path != "/" {
            folder = folder.deletingLastPathComponent()
        }
        return folder.appendingPathComponent("tether")
    }

    /// The agent and policy most daemon tests configure: `support-copilot`, sponsored by jdoe,
    /// and the ticket queue of their department for Support staff (what ``check(_:)`` asks).
    static let supportCopilot = """
        agents:
          - { id: support-copilot, kind: delegated, sponsor: jdoe }
        policies:
          - id: support-tickets
            when: { attribute: { name: department, in: [Support] } }
            grant: [ { agent: support-copilot, scopes: [tickets:read], resource: "zendesk:queue/{department}" } ]
        """

    /// Settings added to the harness's `http` section, e.g. `requestTimeout: 1s`.
    let httpSettings: String
    /// The harness's `admin` settings besides the socket path.
    let adminSettings: String
    /// The `store` section, as a YAML flow mapping.
    let storeSettings: String
    /// A command that runs the daemon (its arguments follow), e.g. to run it as another user;
    /// empty runs the binary directly.
    let launcher: [String]

    /// The harness's store: a SQLite file in the daemon's folder.
    static let sqliteStore = "{ sqlite: ./state/tether.db }"

    /// Starts the daemon with `body` (YAML without store/http/admin, which the harness sets;
    /// `http` adds settings to the `http` section, `store` is the whole `store` section).
    init(
        config body: String, watchdogMicroseconds: Int? = nil, folder: URL? = nil, http: String = "",
        admin: String = #"mode: "0600""#, store: String = DaemonProcess.sqliteStore, launcher: [String] = [],
        environment extra: [String: String] = [:]
    ) throws {
        let folder = try folder ?? Self.folder()
        self.folder = folder
        configPath = folder.appendingPathComponent("tether.yaml").path
        socketPath = folder.appendingPathComponent("admin.sock").path
        logPath = folder.appendingPathComponent("daemon.log").path
        port = try Self.freePort()
        httpSettings = http
        adminSettings = admin
        storeSettings = store
        self.launcher = launcher
        configBody = body
        try Self.write(config: body, to: configPath, port: port, socket: socketPath, http: http, admin: admin, store: store)
        notify = try NotifySocket(folder: folder)
        var environment = ProcessInfo.processInfo.environment
        environment["NOTIFY_SOCKET"] = notify.path
        environment["TETHER_TEST_HOOKS"] = "1"
        environment["WATCHDOG_USEC"] = watchdogMicroseconds.map(String.init)
        environment["WATCHDOG_PID"] = nil
        environment.merge(extra) { _, new in new }
        self.environment = environment
        process = Process()
        ended = ChildExit(process)
        try launch()
    }

    /// A fresh folder for a daemon under test, holding `files` (secrets, tokens) by name.
    static func folder(files: [String: String] = [:]) throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tether-daemon-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for (name, content) in files {
            try content.write(to: folder.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        return folder
    }

    static func write(
        config body: String, to path: String, port: Int, socket: String, http: String = "", admin: String = #"mode: "0600""#,
        store: String = DaemonProcess.sqliteStore
    ) throws {
        let text = """
            store: \(store)
            http: { listen: "127.0.0.1:\(port)"\(http.isEmpty ? "" : ", " + http) }
            admin: { socket: \(socket), \(admin) }
            \(body)
            """
        try text.write(toFile: path, atomically: true, encoding: .utf8)
    }

    /// Replaces the configuration file (for reload tests).
    func rewrite(config body: String) throws {
        configBody = body
        try Self.write(
            config: body, to: configPath, port: port, socket: socketPath, http: httpSettings, admin: adminSettings, store: storeSettings)
    }

    /// Starts (or restarts) the daemon process.
    func launch() throws {
        // Only this process's notifications count: a READY=1 from before a restart must not.
        notify.reset()
        process = Process()
        ended = ChildExit(process)
        if let first = launcher.first {
            process.executableURL = URL(fileURLWithPath: first)
            process.arguments = launcher.dropFirst() + [Self.binary.path, "serve", "--config", configPath]
        } else {
            process.executableURL = Self.binary
            process.arguments = ["serve", "--config", configPath]
        }
        process.environment = environment
        FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = FileHandle(forWritingAtPath: logPath)!
        log.seekToEndOfFile()
        process.standardError = log
        process.standardOutput = log
        try process.run()
    }

    /// Waits for READY=1 from this process; throws with the log when it never comes.
    ///
    /// A free port is chosen before the daemon binds it, so a test running beside this one can
    /// take it first: a daemon that exits on "Address already in use" is started again on
    /// another port, up to three times. Any other exit fails at once, with the log.
    func waitUntilReady(timeout: TimeInterval = 30) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        var rebinds = 0
        while Date() < deadline {
            if await notify.wait(timeout: 0.5, for: { $0.contains("READY=1") }) != nil { return }
            guard ended.exitStatus != nil else { continue }
            guard rebinds < 3, log().contains("Address already in use") else { break }
            rebinds += 1
            port = try Self.freePort()
            try Self.write(
                config: configBody, to: configPath, port: port, socket: socketPath, http: httpSettings, admin: adminSettings,
                store: storeSettings)
            try launch()
        }
        throw DaemonTestError("daemon never sent READY=1; log:\n\(log())")
    }

    func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    func signal(_ number: Int32) { kill(process.processIdentifier, number) }

    /// Waits for the process to exit, returning its status; nil at the deadline.
    func waitForExit(timeout: TimeInterval = 15) async -> Int32? {
        await ended.wait(timeout: .seconds(timeout))
    }

    /// Kills the daemon (SIGKILL) without waiting for it: Foundation reaps it. Where the test
    /// goes on and needs it gone, ``stopAndWait(timeout:)``.
    func stop() {
        // isRunning, not only the exit status: a process that never started has pid 0, and
        // kill(0, …) would signal this whole process group.
        if process.isRunning && ended.exitStatus == nil { signal(SIGKILL) }
    }

    /// Kills the daemon and waits until it has ended; false when it has not by the deadline.
    @discardableResult
    func stopAndWait(timeout: TimeInterval = 15) async -> Bool {
        stop()
        return await waitForExit(timeout: timeout) != nil
    }

    deinit { stop() }

    /// Runs `tether` (or `executable`) to its end, failing after `timeout`. The child's pipes
    /// are served on threads of their own and its exit is awaited, so the test's cooperative
    /// threads stay free for the servers this process runs (targets the daemon calls back).
    static func run(
        _ arguments: [String], input: Data? = nil, environment: [String: String]? = nil, executable: String? = nil,
        timeout: TimeInterval = 120
    ) async throws -> CommandResult {
        let process = Process()
        process.executableURL = executable.map { URL(fileURLWithPath: $0) } ?? binary
        process.arguments = arguments
        if let environment { process.environment = environment }
        let out = Pipe()
        let err = Pipe()
        let inPipe = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = inPipe
        let ended = ChildExit(process)
        try process.run()
        let (stdin, stdout, stderr) = (inPipe.fileHandleForWriting, out.fileHandleForReading, err.fileHandleForReading)
        async let written: Void = offPool {
            if let input { stdin.write(input) }
            try stdin.close()
        }
        async let output = offPool { stdout.readDataToEndOfFile() }
        async let errors = offPool { stderr.readDataToEndOfFile() }
        guard let code = await ended.wait(timeout: .seconds(timeout)) else {
            kill(process.processIdentifier, SIGKILL)
            _ = await ended.wait(timeout: .seconds(10))
            throw DaemonTestError("`tether \(arguments.joined(separator: " "))` did not end within \(Int(timeout)) s")
        }
        try await written
        return CommandResult(
            code: code, stdout: String(decoding: try await output, as: UTF8.self),
            stderr: String(decoding: try await errors, as: UTF8.self))
    }

    /// A loopback port below the kernel's ephemeral range that is free now, for a server a
    /// test stops and starts again on the same port: no listener that asks the kernel for any
    /// free port (every other server of the suite) can be given it in between.
    static func portOutsideEphemeralRange() throws -> Int {
        for _ in 0..<200 {
            let port = Int.random(in: 20_000..<32_000)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = UInt16(port).bigEndian
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if bound == 0 { return port }
        }
        throw DaemonTestError("no free loopback port between 20000 and 32000")
    }

    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

struct CommandResult {
    var code: Int32
    var stdout: String
    var stderr: String

    /// Both streams, for checks that do not mind which one said it.
    var output: String { stdout + stderr }
}

struct DaemonTestError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Polls `condition` until it holds or the deadline passes: a wait on an outcome, never a fixed sleep.
func eventually(timeout: TimeInterval = 20, _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return try await condition()
}
