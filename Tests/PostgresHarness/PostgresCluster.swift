import Foundation
import SlapdHarness
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A throwaway PostgreSQL cluster for tests, from Debian's `postgresql` package: its own
/// folder, `initdb`, and a server on a free loopback port, started in the foreground so that
/// its PID is ours to stop. The server refuses to run as root: as root it runs as the
/// `postgres` user the package creates. `fsync` is off: nothing here must survive a power loss.
///
/// One cluster serves a whole test process (``shared()``); each store gets a database of its
/// own (``makeDatabase()``). The cluster is stopped when the process exits.
public final class PostgresCluster: Sendable {
    public let folder: URL
    public let port: Int
    /// The superuser `initdb` made, who owns every database here; trusted without a password.
    public let user = "tether"
    public let bin: String

    private init(folder: URL, port: Int, bin: String) {
        self.folder = folder
        self.port = port
        self.bin = bin
    }

    private static let started = Task<PostgresCluster, any Error> { try await PostgresCluster.start() }

    /// The process's cluster, started on first use.
    public static func shared() async throws -> PostgresCluster { try await started.value }

    /// A cluster of the caller's own, which it may stop and start again (``stopServer()``,
    /// ``startServer()``); stopped when the process exits like the shared one.
    public static func own() async throws -> PostgresCluster { try await start() }

    /// A new, empty database; returns its name.
    public func makeDatabase() async throws -> String {
        let name = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
        try await psql("CREATE DATABASE \(name)")
        return name
    }

    /// `postgres://tether@127.0.0.1:PORT/DATABASE`.
    public func url(database: String) -> String { "postgres://\(user)@127.0.0.1:\(port)/\(database)" }

    /// Runs `sql` with psql as the superuser, in `database`; returns what psql printed
    /// (unaligned, tuples only).
    @discardableResult
    public func psql(_ sql: String, database: String = "postgres") async throws -> String {
        let (bin, port, user) = (bin, port, user)
        return try await offPool {
            try Slapd.run(
                "\(bin)/psql", ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", "\(port)", "-U", user, "-d", database, "-c", sql])
        }
    }

    /// The PID of the server's postmaster, from its PID file.
    public func postmasterPID() throws -> pid_t {
        let text = try String(contentsOfFile: folder.appendingPathComponent("data/postmaster.pid").path, encoding: .utf8)
        guard let first = text.split(separator: "\n").first, let pid = pid_t(first) else {
            throw SlapdError("the PostgreSQL PID file in \(folder.path) is unreadable")
        }
        return pid
    }

    /// Where Debian's package puts the server's programs: the newest version installed.
    static func binaries() throws -> String {
        let root = "/usr/lib/postgresql"
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        guard let newest = versions.compactMap(Int.init).max() else {
            throw SlapdError("PostgreSQL is not installed (no \(root)/*/bin); install Debian's postgresql package")
        }
        return "\(root)/\(newest)/bin"
    }

    /// Stops the server (a fast shutdown: clients are disconnected) and waits until it is gone.
    public func stopServer() async throws {
        let pid = try postmasterPID()
        kill(pid, SIGINT)
        let file = folder.appendingPathComponent("data/postmaster.pid").path
        let deadline = ContinuousClock.now + .seconds(30)
        while FileManager.default.fileExists(atPath: file) {
            guard ContinuousClock.now < deadline else { throw SlapdError("PostgreSQL did not stop within 30 s") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Starts the server again on the same port and folder. A port the stopped server's
    /// sockets still hold is tried again, a few times.
    public func startServer() async throws {
        let command = Self.runAs + Self.serverCommand(bin: bin, data: folder.appendingPathComponent("data").path, port: port, folder: folder)
        for attempt in 1...5 {
            let pid = try spawn(command[0], Array(command.dropFirst()), log: folder.appendingPathComponent("server.log").path)
            if try await waitUntilReady(pid: pid) { return }
            if attempt < 5 { try await Task.sleep(for: .milliseconds(200 * attempt)) }
        }
        let log = (try? String(contentsOf: folder.appendingPathComponent("server.log"), encoding: .utf8)) ?? ""
        throw SlapdError("PostgreSQL did not start again on port \(port):\n\(log.suffix(2_000))")
    }

    private static var runAs: [String] { geteuid() == 0 ? ["/usr/sbin/runuser", "-u", "postgres", "--"] : [] }

    private static func serverCommand(bin: String, data: String, port: Int, folder: URL) -> [String] {
        [
            "\(bin)/postgres", "-D", data, "-p", "\(port)", "-k", folder.path, "-c", "listen_addresses=127.0.0.1",
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=300",
        ]
    }

    private static func start() async throws -> PostgresCluster {
        let bin = try binaries()
        let folder = URL(fileURLWithPath: "/tmp").appendingPathComponent("tether-postgres-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let asRoot = geteuid() == 0
        let runAs = Self.runAs
        if asRoot { try await offPool { try Slapd.run("/bin/chown", ["postgres", folder.path]) } }
        let data = folder.appendingPathComponent("data").path
        try await offPool {
            let command = runAs + ["\(bin)/initdb", "-D", data, "-A", "trust", "-U", "tether", "--no-sync", "-E", "UTF8"]
            try Slapd.run(command[0], Array(command.dropFirst()))
        }
        var attempt = 1
        while true {
            let port = try freePort()
            let command = runAs + serverCommand(bin: bin, data: data, port: port, folder: folder)
            let pid = try spawn(command[0], Array(command.dropFirst()), log: folder.appendingPathComponent("server.log").path)
            let cluster = PostgresCluster(folder: folder, port: port, bin: bin)
            if try await cluster.waitUntilReady(pid: pid) {
                stopAtExit(folder: folder.path)
                return cluster
            }
            // The port was taken before the server bound it; another one.
            attempt += 1
            guard attempt <= 3 else {
                let log = (try? String(contentsOf: folder.appendingPathComponent("server.log"), encoding: .utf8)) ?? ""
                throw SlapdError("PostgreSQL did not start in \(folder.path):\n\(log)")
            }
        }
    }

    /// Polls `pg_isready` until the server accepts connections; false when the server exited.
    private func waitUntilReady(pid: pid_t) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid { return false }
            let (bin, port) = (bin, port)
            let ready = try await offPool { () -> Bool in
                (try? Slapd.run("\(bin)/pg_isready", ["-q", "-h", "127.0.0.1", "-p", "\(port)", "-t", "1"])) != nil
            }
            if ready { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw SlapdError("PostgreSQL did not accept connections within 30 s")
    }
}

/// The folders of the process's clusters, for the exit handler, which can capture nothing.
private let clusterFolders = Mutex<[String]>([])

/// Stops the servers when the process exits: an immediate shutdown (SIGQUIT) of each
/// postmaster, then its folder removed.
private func stopAtExit(folder: String) {
    let first = clusterFolders.withLock { folders in
        folders.append(folder)
        return folders.count == 1
    }
    guard first else { return }
    atexit {
        for folder in clusterFolders.withLock({ $0 }) {
            if let text = try? String(contentsOfFile: folder + "/data/postmaster.pid", encoding: .utf8),
                let first = text.split(separator: "\n").first, let pid = pid_t(first)
            {
                kill(pid, SIGQUIT)
                // The postmaster removes its PID file once its children are gone.
                for _ in 0..<200 where FileManager.default.fileExists(atPath: folder + "/data/postmaster.pid") { usleep(10_000) }
            }
            try? FileManager.default.removeItem(atPath: folder)
        }
    }
}

/// PgBouncer in front of a cluster, in the pool mode asked for: what a deployment may put
/// between the daemons and PostgreSQL. Runs in the foreground (as `postgres` when root, which
/// it refuses); stopped with ``stop()``.
public final class PgBouncer: Sendable {
    public let port: Int
    private let pid: pid_t

    private init(port: Int, pid: pid_t) {
        self.port = port
        self.pid = pid
    }

    /// Starts PgBouncer on a free port, trusting every client, in `mode` (`transaction`,
    /// `session`), in front of `cluster`.
    public static func start(before cluster: PostgresCluster, mode: String) async throws -> PgBouncer {
        let folder = URL(fileURLWithPath: "/tmp").appendingPathComponent("tether-pgbouncer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let port = try freePort()
        let users = folder.appendingPathComponent("users.txt").path
        try "\"\(cluster.user)\" \"\"\n".write(toFile: users, atomically: true, encoding: .utf8)
        let config = folder.appendingPathComponent("pgbouncer.ini").path
        try """
            [databases]
            * = host=127.0.0.1 port=\(cluster.port)
            [pgbouncer]
            listen_addr = 127.0.0.1
            listen_port = \(port)
            unix_socket_dir =
            auth_type = trust
            auth_file = \(users)
            pool_mode = \(mode)
            logfile = \(folder.appendingPathComponent("pgbouncer.log").path)
            """.write(toFile: config, atomically: true, encoding: .utf8)
        if geteuid() == 0 { try await offPool { try Slapd.run("/bin/chown", ["-R", "postgres", folder.path]) } }
        let command = (geteuid() == 0 ? ["/usr/sbin/runuser", "-u", "postgres", "--"] : []) + ["/usr/sbin/pgbouncer", config]
        let pid = try spawn(command[0], Array(command.dropFirst()), log: folder.appendingPathComponent("stdout.log").path)
        let bouncer = PgBouncer(port: port, pid: pid)
        let deadline = ContinuousClock.now + .seconds(15)
        while ContinuousClock.now < deadline {
            let ready = try await offPool { () -> Bool in
                (try? Slapd.run("\(cluster.bin)/pg_isready", ["-q", "-h", "127.0.0.1", "-p", "\(port)", "-t", "1"])) != nil
            }
            if ready { return bouncer }
            try await Task.sleep(for: .milliseconds(50))
        }
        bouncer.stop()
        throw SlapdError("PgBouncer did not accept connections on port \(port)")
    }

    /// `postgres://tether@127.0.0.1:PORT/DATABASE` through the pooler.
    public func url(database: String) -> String { "postgres://tether@127.0.0.1:\(port)/\(database)" }

    public func stop() {
        kill(pid, SIGTERM)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
    }
}
