import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A throwaway OpenLDAP server for one test: its own folder, configuration, database and
/// free loopback port; started in the foreground so that its PID is ours to stop or kill.
public final class Slapd: @unchecked Sendable {
    public struct Options {
        /// Load syncprov (syncrepl) and memberof.
        public var syncprov = true
        /// Keep member and manager DNs right after renames and deletions.
        public var refint = true
        /// Serve ldaps:// (and StartTLS) with these files.
        public var tls: TLSFiles?
        /// Answer searches outside the suffix with a referral to this URL ("" for none).
        public var referral = ""
        /// slapd's `-d` level: 0 logs nothing, 256 (stats) logs every operation and result.
        public var debugLevel = 0

        public init(syncprov: Bool = true, refint: Bool = true, tls: TLSFiles? = nil, referral: String = "", debugLevel: Int = 0) {
            self.syncprov = syncprov
            self.refint = refint
            self.tls = tls
            self.referral = referral
            self.debugLevel = debugLevel
        }
    }

    public struct TLSFiles {
        public var ca: String
        public var certificate: String
        public var key: String

        public init(ca: String, certificate: String, key: String) {
            self.ca = ca
            self.certificate = certificate
            self.key = key
        }
    }

    public static let suffix = "dc=example,dc=com"
    public static let rootDN = "cn=admin,dc=example,dc=com"
    public static let rootPassword = "secret"

    public let folder: URL
    public let port: Int
    public let tlsPort: Int?
    public let options: Options
    private let lock = NSLock()
    private var pid: pid_t?

    public var url: String { "ldap://127.0.0.1:\(port)/" }
    public var ldapsURL: String { "ldaps://127.0.0.1:\(tlsPort ?? 0)/" }
    public var configFile: String { folder.appendingPathComponent("slapd.conf").path }

    private init(folder: URL, options: Options) throws {
        self.folder = folder
        self.options = options
        self.port = try freePort()
        self.tlsPort = options.tls == nil ? nil : try freePort()
    }

    /// Writes the configuration, loads `ldif` with `slapadd -q`, starts the server and
    /// waits until it answers.
    ///
    /// A server that exits while starting is started again, up to three times, in a new folder
    /// on new ports: a port found free can be taken by another process of a busy test run
    /// before slapd binds it.
    public static func start(ldif: String, options: Options = Options()) async throws -> Slapd {
        var attempt = 1
        while true {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tether-slapd-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: folder.appendingPathComponent("db"), withIntermediateDirectories: true)
            let slapd = try Slapd(folder: folder, options: options)
            try slapd.configuration().write(toFile: slapd.configFile, atomically: true, encoding: .utf8)
            let ldifFile = folder.appendingPathComponent("data.ldif").path
            try ldif.write(toFile: ldifFile, atomically: true, encoding: .utf8)
            let configFile = slapd.configFile
            try await offPool { try run("/usr/sbin/slapadd", ["-q", "-f", configFile, "-l", ldifFile]) }
            do {
                try await slapd.launch()
                return slapd
            } catch let error as SlapdError where error.exitedWhileStarting && attempt < 3 {
                attempt += 1
            }
        }
    }

    private func configuration() -> String {
        var modules = ["back_mdb", "ppolicy"]
        if options.syncprov { modules += ["syncprov", "memberof"] }
        if options.refint { modules.append("refint") }
        var text = """
            include /etc/ldap/schema/core.schema
            include /etc/ldap/schema/cosine.schema
            include /etc/ldap/schema/inetorgperson.schema
            include /etc/ldap/schema/nis.schema
            modulepath /usr/lib/ldap
            \(modules.map { "moduleload \($0)" }.joined(separator: "\n"))
            pidfile \(folder.path)/slapd.pid
            sizelimit unlimited

            """
        if !options.referral.isEmpty { text += "referral \(options.referral)\n" }
        if let tls = options.tls {
            text += """
                TLSCACertificateFile \(tls.ca)
                TLSCertificateFile \(tls.certificate)
                TLSCertificateKeyFile \(tls.key)

                """
        }
        text += """
            database mdb
            directory \(folder.path)/db
            suffix "\(Self.suffix)"
            rootdn "\(Self.rootDN)"
            rootpw \(Self.rootPassword)
            maxsize 1073741824
            dbnosync
            index objectClass,uid,cn,mail,member,entryCSN,entryUUID eq
            overlay ppolicy

            """
        if options.syncprov { text += "index memberOf eq\noverlay memberof\n" }
        if options.refint { text += "overlay refint\nrefint_attributes member uniqueMember manager\n" }
        if options.syncprov { text += "overlay syncprov\nsyncprov-checkpoint 100 10\nsyncprov-sessionlog 1000\n" }
        return text
    }

    private func launch() async throws {
        var listeners = url
        if let tlsPort { listeners += " ldaps://127.0.0.1:\(tlsPort)/" }
        let pid = try spawn(
            "/usr/sbin/slapd", ["-f", configFile, "-h", listeners, "-d", String(options.debugLevel)], log: try logFile().path)
        lock.withLock { self.pid = pid }
        try await waitUntilAnswering()
    }

    /// What the server has written to its log (stdout and stderr) so far.
    public var log: String {
        (try? String(contentsOf: folder.appendingPathComponent("slapd.log"), encoding: .utf8)) ?? ""
    }

    private func logFile() throws -> URL {
        let file = folder.appendingPathComponent("slapd.log")
        if !FileManager.default.fileExists(atPath: file.path) {
            _ = FileManager.default.createFile(atPath: file.path, contents: nil)
        }
        return file
    }

    /// Polls with a root DSE search until the server answers, for at most 60 seconds (a
    /// loaded machine running every suite at once can be slow to start a server).
    private func waitUntilAnswering() async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        let url = url
        while ContinuousClock.now < deadline {
            let search = ["-x", "-H", url, "-b", "", "-s", "base", "-LLL", "objectClass"]
            if (try? await offPool { try Self.run("/usr/bin/ldapsearch", search) }) != nil {
                return
            }
            if let pid = lock.withLock({ self.pid }), let status = exitStatus(pid) {
                lock.withLock { self.pid = nil }
                let log = (try? String(contentsOf: folder.appendingPathComponent("slapd.log"), encoding: .utf8)) ?? ""
                var error = SlapdError("slapd exited with \(status): \(log)")
                error.exitedWhileStarting = true
                throw error
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        let log = (try? String(contentsOf: folder.appendingPathComponent("slapd.log"), encoding: .utf8)) ?? ""
        let state = lock.withLock { pid }.map { "pid \($0) still running" } ?? "no process"
        throw SlapdError("slapd did not answer on \(url) within 60 s (\(state)); its log: \(log)")
    }

    /// Starts the server again on the same port and database, after ``kill()`` or ``stop()``.
    public func restart() async throws {
        try await launch()
    }

    /// The whole database as LDIF (`slapcat`), operational attributes included (entryUUID,
    /// entryCSN and the suffix's contextCSN): a backup, as an operator takes it every night.
    /// The server is stopped for it and started again, so that syncprov has written its
    /// contextCSN to the database (a running server keeps it in memory between checkpoints).
    public func backup() async throws -> String {
        let configFile = configFile
        let ldif = try await offPool {
            self.stop()
            return try Self.run("/usr/sbin/slapcat", ["-f", configFile])
        }
        try await launch()
        return ldif
    }

    /// Stops the server, replaces its database with `backup` (``backup()``'s LDIF, loaded
    /// with `slapadd -q`) and starts it again on the same port: a directory restored from
    /// last night's backup, older than what its clients have seen.
    public func restore(_ backup: String) async throws {
        try await offPool { self.stop() }
        let database = folder.appendingPathComponent("db")
        try FileManager.default.removeItem(at: database)
        try FileManager.default.createDirectory(at: database, withIntermediateDirectories: true)
        let ldifFile = folder.appendingPathComponent("restore.ldif").path
        try backup.write(toFile: ldifFile, atomically: true, encoding: .utf8)
        let configFile = configFile
        try await offPool { try Self.run("/usr/sbin/slapadd", ["-q", "-f", configFile, "-l", ldifFile]) }
        try await launch()
    }

    /// SIGTERM, then waits for the process to end.
    public func stop() {
        signal(SIGTERM)
    }

    /// SIGKILL, then waits for the process to end: a crash, as far as clients can tell.
    public func kill() {
        signal(SIGKILL)
    }

    private func signal(_ signal: Int32) {
        guard let pid = lock.withLock({ () -> pid_t? in
            defer { self.pid = nil }
            return self.pid
        }) else { return }
        Glibc.kill(pid, SIGCONT)
        Glibc.kill(pid, signal)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0, errno == EINTR {}
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing answers.
    public func pause() {
        guard let pid = lock.withLock({ self.pid }) else { return }
        Glibc.kill(pid, SIGSTOP)
        // kill() returns before the process has stopped: wait until every thread is stopped
        // (state T in /proc), so a request sent next cannot be answered.
        let deadline = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < deadline && !Self.allThreadsStopped(pid) { usleep(1_000) }
    }

    private static func allThreadsStopped(_ pid: pid_t) -> Bool {
        let tasks = "/proc/\(pid)/task"
        guard let threads = try? FileManager.default.contentsOfDirectory(atPath: tasks), !threads.isEmpty else { return false }
        return threads.allSatisfy { thread in
            guard let stat = try? String(contentsOfFile: "\(tasks)/\(thread)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { return false }
            return stat[stat.index(close, offsetBy: 2)...].first == "T"
        }
    }

    /// Thaws a server frozen by ``pause()``.
    public func resume() {
        if let pid = lock.withLock({ self.pid }) { Glibc.kill(pid, SIGCONT) }
    }

    /// The server's process id while it runs.
    public var processID: pid_t? { lock.withLock { pid } }

    /// Stops the server and removes its folder.
    public func destroy() {
        stop()
        try? FileManager.default.removeItem(at: folder)
    }

    deinit {
        destroy()
    }

    /// Runs `executable` to its end and returns what it printed on stdout; throws with its
    /// stderr when it exits other than 0. Started by ``runToEnd(_:_:input:)``, not Foundation's
    /// `Process`, whose start reads `/proc/self/fd` past a buffer's end now and then.
    @discardableResult
    public static func run(_ executable: String, _ arguments: [String], input: String? = nil) throws -> String {
        let result = try runToEnd(executable, arguments, input: input)
        guard result.status == 0 else {
            throw SlapdError("\(executable) \(arguments.joined(separator: " ")) exited \(result.status): " + result.stderr)
        }
        return result.stdout
    }
}

public struct SlapdError: Error, CustomStringConvertible {
    public let description: String
    /// The server exited before it answered: another process may have taken its port.
    public var exitedWhileStarting = false
    public init(_ description: String) { self.description = description }
}

/// A loopback TCP port nobody listens on right now (bound to port 0, then released).
public func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw SlapdError("socket() failed") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw SlapdError("bind() failed") }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let named = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    guard named == 0 else { throw SlapdError("getsockname() failed") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Starts `executable` with a clean signal mask (the test runner's threads block SIGTERM,
/// and a child inherits that mask), stdout and stderr appended to `log`, and no other
/// descriptor of this process: a test process running many daemons holds hundreds, and a
/// server counts them against its own limit (PostgreSQL refuses to start short of about 60).
public func spawn(_ executable: String, _ arguments: [String], log: String) throws -> pid_t {
    try start(executable, arguments, stdin: "/dev/null", stdout: (log, O_APPEND), stderr: nil)
}

/// What a program run to its end printed, and how it ended.
public struct RunResult: Sendable {
    /// The exit code, or 128 + the signal that ended it.
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// Runs `executable` to its end as ``spawn(_:_:log:)`` starts a server (a clean signal mask, no
/// descriptor of this process but its own), `input` on stdin, and collects stdout and stderr.
/// The input and the output go through files, not pipes: a tool that stops reading, or fills
/// one pipe while nobody reads it, must neither block nor kill (SIGPIPE) the test process.
/// Blocks the calling thread until the program ends: call it off the cooperative pool.
public func runToEnd(_ executable: String, _ arguments: [String], input: String? = nil) throws -> RunResult {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tether-run-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: folder) }
    let (inPath, outPath, errPath) = (
        folder.appendingPathComponent("in").path, folder.appendingPathComponent("out").path, folder.appendingPathComponent("err").path
    )
    try Data((input ?? "").utf8).write(to: URL(fileURLWithPath: inPath))
    let pid = try start(executable, arguments, stdin: inPath, stdout: (outPath, O_TRUNC), stderr: (errPath, O_TRUNC))
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 {
        guard errno == EINTR else { throw SlapdError("waiting for \(executable) failed: \(String(cString: strerror(errno)))") }
    }
    // WIFEXITED / WEXITSTATUS / WTERMSIG, which Swift does not import as functions.
    let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    let read = { (path: String) in String(decoding: (try? Data(contentsOf: URL(fileURLWithPath: path))) ?? Data(), as: UTF8.self) }
    return RunResult(status: code, stdout: read(outPath), stderr: read(errPath))
}

/// posix_spawn of `executable` with a clean signal mask and default dispositions, stdin read
/// from the file `stdin`, stdout written to a file (`O_APPEND` or `O_TRUNC`), stderr to its own
/// file or (nil) beside stdout, and every other descriptor closed.
private func start(
    _ executable: String, _ arguments: [String], stdin: String, stdout: (path: String, mode: Int32), stderr: (path: String, mode: Int32)?
) throws -> pid_t {
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var empty = sigset_t()
    sigemptyset(&empty)
    posix_spawnattr_setsigmask(&attributes, &empty)
    var defaults = sigset_t()
    sigemptyset(&defaults)
    for signal in [SIGTERM, SIGINT, SIGHUP, SIGPIPE] { sigaddset(&defaults, signal) }
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, stdin, O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, stdout.path, O_WRONLY | O_CREAT | stdout.mode, 0o644)
    if let stderr {
        posix_spawn_file_actions_addopen(&actions, 2, stderr.path, O_WRONLY | O_CREAT | stderr.mode, 0o644)
    } else {
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
    }
    closeFrom(&actions, 3)
    let argv = ([executable] + arguments).map { strdup($0) } + [nil]
    defer { for pointer in argv { free(pointer) } }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
    guard rc == 0 else { throw SlapdError("cannot start \(executable): \(String(cString: strerror(rc)))") }
    return pid
}

/// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34), which the Swift module of the C
/// library does not declare: looked up by name, skipped where it is missing.
private func closeFrom(_ actions: inout posix_spawn_file_actions_t, _ first: Int32) {
    typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
    guard let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") else { return }
    _ = unsafeBitCast(symbol, to: CloseFrom.self)(&actions, first)
}

/// The exit status of child `pid` if it has ended, without waiting.
public func exitStatus(_ pid: pid_t) -> Int32? {
    var status: Int32 = 0
    return waitpid(pid, &status, WNOHANG) == pid ? status : nil
}

/// Runs blocking work (a child process, a wait for one, a poll of a socket) on a thread of its
/// own, off the cooperative pool: with a thread per core there, a few blocked waits would
/// starve the servers a test process runs (a daemon in process, targets the daemon calls).
public func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}
