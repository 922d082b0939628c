import TetherCore

/// `store`: where Tether keeps identities, grants, plans and the audit log.
public struct StoreConfiguration: Sendable, Hashable {
    /// The store path used when `store.sqlite` is not set.
    public static let defaultSQLitePath = "/var/lib/tether/tether.db"

    /// When a commit reaches the disk (SQLite's `synchronous` in WAL mode).
    public enum Synchronous: String, Sendable, Hashable, CaseIterable {
        /// A commit survives a crash of the daemon at once, and a power loss once the log is
        /// checkpointed, within a second: no sync per commit. An answer to a sender (an HR
        /// leaver's 200) can then be lost with the power.
        case normal
        /// The default: every commit is synced before it is acknowledged (an HR leaver's 200
        /// included), so an answer means the change survives a power loss: one log sync per commit.
        case full
    }

    /// Absolute path of the SQLite database file; with `postgres` set, only the folder the
    /// node's own files (the decision log) are kept beside.
    public var sqlite: String
    /// When a commit reaches the disk; by default (``Synchronous/full``) before it is acknowledged.
    public var synchronous: Synchronous
    /// The PostgreSQL database several daemons share (SPEC §14); nil: the SQLite file.
    public var postgres: PostgresStoreConfiguration?

    /// Creates a store configuration; the default is SPEC §2's path, every commit synced.
    public init(
        sqlite: String = StoreConfiguration.defaultSQLitePath, synchronous: Synchronous = .full,
        postgres: PostgresStoreConfiguration? = nil
    ) {
        self.sqlite = sqlite
        self.synchronous = synchronous
        self.postgres = postgres
    }

    /// Where the store is, as logs and `tether status` name it.
    public var location: String { postgres.map { "\($0.url)" } ?? sqlite }
}

/// `store.postgres`: the database, the password's file and how the connection is protected.
public struct PostgresStoreConfiguration: Sendable, Hashable {
    public var url: PostgresURL
    /// The file that holds the password (its first line); nil: none (trust, peer or a certificate).
    public var passwordFile: String?
    public var tls: PostgresTLS
    public var caFile: String?
    /// The most connections one daemon opens.
    public var poolSize: Int

    public static let defaultPoolSize = 8

    public init(url: PostgresURL, passwordFile: String? = nil, tls: PostgresTLS = .disable, caFile: String? = nil, poolSize: Int = defaultPoolSize) {
        self.url = url
        self.passwordFile = passwordFile
        self.tls = tls
        self.caFile = caFile
        self.poolSize = poolSize
    }
}

/// `http`: the public listener for SCIM, HR hooks, `/v1/check`, health and metrics.
public struct HTTPConfiguration: Sendable, Hashable {
    /// Host name or IP address to bind; IPv6 addresses without brackets.
    public var host: String
    /// TCP port; 0 asks the system for a free one (tests).
    public var port: Int
    /// Requests with a larger body are refused with 413.
    public var maxBodyBytes: Int
    /// How long a client has to send a whole request (headers and body) once the server waits
    /// for one; slower or stalled connections are closed. Also closes idle keep-alive connections.
    public var requestTimeout: Duration
    /// The most connections served at once. Past it the listener stops accepting (new
    /// connections wait in the kernel's queue) until one closes, so a flood of clients cannot
    /// use up the file descriptors that the store and the directory connection need.
    public var maxConnections: Int
    /// The real-time priority (`SCHED_RR`, 1 to 99) the event loops ask for; nil keeps them in
    /// the normal class.
    public var realtimePriority: Int?

    /// Creates an HTTP configuration with SPEC §4 defaults.
    public init(
        host: String = "127.0.0.1", port: Int = 8080, maxBodyBytes: Int = 1_048_576, requestTimeout: Duration = .seconds(30),
        maxConnections: Int = 512, realtimePriority: Int? = nil
    ) {
        self.host = host
        self.port = port
        self.maxBodyBytes = maxBodyBytes
        self.requestTimeout = requestTimeout
        self.maxConnections = maxConnections
        self.realtimePriority = realtimePriority
    }

    /// `host:port` as written in configuration, with brackets around an IPv6 host.
    public var listen: String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

/// `admin`: the Unix socket operator commands reach the daemon through.
public struct AdminConfiguration: Sendable, Hashable {
    /// The socket path used when `admin.socket` is not set.
    public static let defaultSocketPath = "/run/tether/admin.sock"

    /// Absolute path of the Unix socket.
    public var socket: String
    /// File mode of the socket, e.g. `0o660`, parsed from the octal string in configuration.
    public var mode: Int
    /// The group the socket belongs to, so its members may operate; nil keeps the daemon's own
    /// group. Operators get a group of their own (`tether-operators` in the shipped units): the
    /// daemon's group can read the secrets, the operators' cannot.
    public var group: String?

    /// Creates an admin configuration with SPEC §4 defaults.
    public init(socket: String = AdminConfiguration.defaultSocketPath, mode: Int = 0o660, group: String? = nil) {
        self.socket = socket
        self.mode = mode
        self.group = group
    }
}

/// `check`: the runtime authorisation endpoint `POST /v1/check`.
public struct CheckConfiguration: Sendable, Hashable {
    /// Absolute path of the file holding the accepted bearer token(s); nil turns the endpoint off.
    public var tokenFile: String?
    /// `check.log`: how answers are recorded (SPEC §16).
    public var log: DecisionLogConfiguration
    /// How long a check that asks for a revision (`atLeast`) waits for this node's index to
    /// reach it before it is answered 503 (SPEC §14).
    public var maxWait: Duration = .milliseconds(100)

    /// Creates a check configuration; without a token file the endpoint is off.
    public init(tokenFile: String? = nil, log: DecisionLogConfiguration = DecisionLogConfiguration()) {
        self.tokenFile = tokenFile
        self.log = log
    }

    /// Whether `/v1/check` is served.
    public var isEnabled: Bool { tokenFile != nil }
}

/// `exceptions`: bounds on operators' exceptions to policy (SPEC §17).
public struct ExceptionsConfiguration: Sendable, Hashable {
    /// The longest a grant exception may last (`exceptions.maxDuration`, 90 days by default).
    public var maxDuration: Duration

    /// Creates the exceptions section; by default a grant exception lasts at most 90 days.
    public init(maxDuration: Duration = .seconds(90 * 86_400)) {
        self.maxDuration = maxDuration
    }
}

/// `check.log`: the decision log, every `/v1/check` answer on record (SPEC §16).
public struct DecisionLogConfiguration: Sendable, Hashable {
    /// The default queue between the check and the writer: about three seconds of checks at
    /// 20,000 a second, a few tens of MiB at most.
    public static let defaultQueueSize = 65_536

    /// Which allows are recorded; denies always are. Default: every one.
    public var allows: AllowLogging
    /// The most decisions waiting for the writer; past it new ones are dropped and counted.
    public var queueSize: Int
    /// Absolute path of the decision log's SQLite file; nil: next to the store
    /// (``path(store:)``).
    public var path: String?
    /// How long decisions are kept.
    public var retention: Duration

    /// Creates a decision log configuration; the defaults record every answer for 30 days.
    public init(
        allows: AllowLogging = .all, queueSize: Int = DecisionLogConfiguration.defaultQueueSize, path: String? = nil,
        retention: Duration = .seconds(30 * 86_400)
    ) {
        self.allows = allows
        self.queueSize = queueSize
        self.path = path
        self.retention = retention
    }

    /// The file the log is written to: `path`, else beside the store at `store`, named after
    /// it (`/var/lib/tether/tether.db` → `/var/lib/tether/tether-decisions.db`).
    public func path(store: String) -> String {
        path ?? Self.defaultPath(store: store)
    }

    /// The decision log's file beside the store at `store`.
    public static func defaultPath(store: String) -> String {
        let stem = store.hasSuffix(".db") ? String(store.dropLast(3)) : store
        return stem + "-decisions.db"
    }
}

/// `usage`: how the check index's record of last uses reaches the store (SPEC §15 "Usage").
public struct UsageConfiguration: Sendable, Hashable {
    /// How often the last uses recorded since the previous flush are written to the store
    /// (`usage.flushInterval`, 1 minute by default): what a crash can lose, at most.
    public var flushInterval: Duration

    /// Creates the usage section; by default last uses are flushed every minute.
    public init(flushInterval: Duration = .seconds(60)) {
        self.flushInterval = flushInterval
    }
}

/// `lifecycle`: how sources rank against each other and how their records are joined (SPEC §3).
public struct LifecycleConfiguration: Sendable, Hashable {
    /// Sources in order of precedence, highest first; `operator` always outranks them.
    public var precedence: [Source]
    /// Fields that join records from different sources into one identity, tried in order.
    public var correlate: [CorrelationKey]

    /// Creates a lifecycle configuration with SPEC §4 defaults.
    public init(
        precedence: [Source] = [.hr, .scim, .ldap],
        correlate: [CorrelationKey] = [.employeeNumber, .email, .userName]
    ) {
        self.precedence = precedence
        self.correlate = correlate
    }
}
