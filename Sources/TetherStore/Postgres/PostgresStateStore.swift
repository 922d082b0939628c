import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import ServiceLifecycle
import Synchronization
import TetherCore

/// The backend for several daemons on one database: PostgreSQL through postgres-nio.
///
/// It keeps the SQLite backend's schema and stored texts (times as `Timestamp` strings,
/// records as the same JSON), so `tether store copy` moves rows between the two unchanged and
/// the audit chain verifies on the copy. Constraints live in the schema; migrations are named
/// and append-only, applied under a transaction-scoped advisory lock so that daemons starting
/// together migrate once. No session state is relied on between transactions: the backend
/// works behind a pooler in transaction mode.
///
/// Every read and write runs synchronously on a thread of the store's own pool, on a
/// connection leased for that transaction: ``DecisionReads`` is synchronous, and the engine
/// decides from one read transaction.
public final class PostgresStateStore: DaemonStore, Sendable {
    public let settings: PostgresSettings
    let client: PostgresClient
    let threads: NIOThreadPool
    let logger: Logger
    private let runner: Task<Void, Never>
    let insertions = OutboxInsertions()
    /// The lease every write is fenced by; nil: writes are not fenced (one node, or tools).
    let fencing = Mutex<Fencing?>(nil)
    /// How long the server lets a write transaction sit idle before it ends it (milliseconds).
    let idleWriteTimeout = Mutex<Int64>(10_000)
    /// How long a transaction waits for a connection before it fails: the pool retries a
    /// server that is down for ever, and a caller is owed an answer. 15 seconds until set.
    let connectionWait = Mutex<Duration>(.seconds(15))

    /// Connects to the database `settings` name and migrates it to the current schema.
    /// - Parameter migrating: false to open an existing store as it is, for reading: nothing is
    ///   created or migrated, and a database not at this version's schema is refused.
    public init(
        settings: PostgresSettings, migrating: Bool = true, logger: Logger = Logger(label: "tether.store.postgres")
    ) async throws {
        self.settings = settings
        self.logger = logger
        let configuration: PostgresClient.Configuration
        do {
            configuration = try settings.clientConfiguration()
            // A first connection of its own: the pool would retry a server that refuses, a
            // wrong password or a bad certificate for ever; this says what it is, at once.
            let probe = try await PostgresConnection.connect(
                on: MultiThreadedEventLoopGroup.singleton.next(), configuration: try settings.connectionConfiguration(), id: 0,
                logger: logger)
            try await probe.close()
        } catch {
            throw StoreError(.open, "cannot connect to PostgreSQL at \(settings.url)", underlying: Self.plain(error))
        }
        // The pool's own lines (each failed connection attempt, with the library's error dump)
        // are not for operators: what fails is reported, in a sentence, by whoever needed it.
        var background = logger
        background.logLevel = .critical
        let client = PostgresClient(configuration: configuration, backgroundLogger: background)
        self.client = client
        runner = Task { await client.run() }
        threads = NIOThreadPool(numberOfThreads: settings.poolSize)
        threads.start()
        do {
            if migrating { try await migrate() } else { try await checkMigrated() }
        } catch let error as StoreError {
            await close()
            throw error
        } catch {
            await close()
            throw StoreError(.open, "cannot open the store in PostgreSQL at \(settings.url)", underlying: Self.plain(error))
        }
    }

    public var services: [any Service] { [] }

    /// Ends, on the server, a write transaction idle for longer than `timeout`: what bounds
    /// how long a frozen leader's locks delay its successor (``HACoordinator`` sets it to the
    /// lease's duration). 10 seconds until set.
    public func limitIdleWrites(to timeout: Duration) {
        let milliseconds = timeout.components.seconds * 1_000 + timeout.components.attoseconds / 1_000_000_000_000_000
        idleWriteTimeout.withLock { $0 = max(1_000, milliseconds) }
    }

    /// Fails a transaction that has no connection after `wait` (15 seconds until set).
    public func waitForConnections(atMost wait: Duration) {
        connectionWait.withLock { $0 = wait }
    }

    public var location: String { settings.url }

    /// Closes every connection and stops the store's threads.
    public func close() async {
        runner.cancel()
        try? await threads.shutdownGracefully()
    }

    /// Runs `body` on a leased connection, on one of the store's threads; fails with
    /// ``PostgresFailure`` when no connection is had within ``waitForConnections(atMost:)``.
    @discardableResult
    func session<T: Sendable>(_ body: @escaping @Sendable (PostgresSession) throws -> T) async throws -> T {
        let (threads, logger) = (threads, logger)
        return try await connection { connection in
            try await threads.runIfActive { try body(PostgresSession(connection: connection, logger: logger)) }
        }
    }

    /// Runs `body` with a leased connection; fails with ``PostgresFailure`` when no connection
    /// is had within ``waitForConnections(atMost:)``: the pool retries a server that is down for
    /// ever, and a caller is owed an answer.
    func connection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let (client, wait) = (client, connectionWait.withLock { $0 })
        // Once `body` has a connection it runs to its end: only the wait is abandoned, so a
        // write is never reported failed after it committed.
        let lease = LeaseWait()
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                try await client.withConnection { connection in
                    guard lease.start() else { throw CancellationError() }
                    return try await body(connection)
                }
            }
            group.addTask {
                try await Task.sleep(for: wait)
                return nil
            }
            defer { group.cancelAll() }
            while let result = try await group.next() {
                if let result { return result }
                if lease.abandon() {
                    let waited = wait < .seconds(1) ? "\(wait.components.attoseconds / 1_000_000_000_000_000) ms" : "\(wait.components.seconds) s"
                    throw PostgresFailure(description: "no connection to the server within \(waited); is PostgreSQL running and reachable?")
                }
            }
            throw CancellationError()
        }
    }

    /// Runs `body` in one transaction: committed when it returns, rolled back when it throws.
    ///
    /// `begin` goes out with the body's first statement rather than a round trip before it;
    /// its answer is looked at once the body is done (it came before the body's first answer).
    /// A read-only transaction's `COMMIT` is not waited for either: the connection answers it
    /// before anything its next user sends, and ending a snapshot cannot fail.
    func transaction<T: Sendable>(
        _ begin: String = "BEGIN", _ body: @escaping @Sendable (PostgresSession) throws -> T
    ) async throws -> T {
        let readOnly = begin.hasSuffix("READ ONLY")
        return try await session { session in
            let begun = session.send(begin)
            do {
                let result = try body(session)
                _ = try session.wait(for: begun)
                if readOnly { session.send("COMMIT") } else { try session.execute("COMMIT") }
                return result
            } catch {
                _ = try? session.execute("ROLLBACK")
                throw error
            }
        }
    }

    /// Runs a read in one snapshot, mapping failures to ``StoreError``.
    func read<T: Sendable>(_ body: @escaping @Sendable (PostgresSession) throws -> T) async throws -> T {
        do {
            return try await transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", body)
        } catch let error as StoreError {
            throw error
        } catch let cancelled as CancellationError {
            throw cancelled
        } catch {
            throw StoreError(.read, "reading the store in PostgreSQL at \(settings.url) failed", underlying: Self.plain(error))
        }
    }

    /// Runs a write transaction, mapping failures to ``StoreError`` that says what was not
    /// written (`what`); a SCIM conflict is kept as the error's `underlying`.
    /// - Parameter fenced: false for the writes any node makes (the last uses of its checks).
    @discardableResult
    func write<T: Sendable>(
        _ what: String, fenced: Bool = true, _ body: @escaping @Sendable (PostgresSession) throws -> T
    ) async throws -> T {
        do {
            let idle = idleWriteTimeout.withLock { $0 }
            return try await transaction("BEGIN") { session in
                // A process frozen inside a write (SIGSTOP, a paused VM) would hold its locks,
                // the lease row's among them, for as long as it is frozen: the server ends
                // such a transaction instead, and the frozen writer's commit fails on waking.
                session.send("SELECT set_config('idle_in_transaction_session_timeout', ?, true)", [String(idle)])
                if fenced { try self.checkFence(in: session) }
                return try body(session)
            }
        } catch let refused as NotLeader {
            throw StoreError(.write, "\(what) was not committed; nothing was applied", underlying: refused)
        } catch let error as StoreError {
            throw error
        } catch let cancelled as CancellationError {
            throw cancelled
        } catch let conflict as SCIMWriteConflict {
            throw StoreError(.write, "\(what) was not committed; nothing was applied", underlying: conflict)
        } catch {
            throw StoreError(.write, "\(what) was not committed; nothing was applied", underlying: Self.plain(error))
        }
    }

    /// A PostgreSQL error as an operator reads it: the server's message and, where the server
    /// gave them, its detail and hint; postgres-nio's own description holds the whole query.
    static func plain(_ error: any Error) -> any Error {
        guard let error = error as? PSQLError else { return error }
        if let server = error.serverInfo, let message = server[.message] {
            var text = message
            if let detail = server[.detail] { text += " (\(detail))" }
            if let hint = server[.hint] { text += "; \(hint)" }
            if let code = server[.sqlState] { text += " [SQLSTATE \(code)]" }
            return PostgresFailure(description: text)
        }
        if let connecting = error.underlying as? NIOConnectionError {
            let errno = connecting.connectionErrors.lazy.compactMap { ($0.error as? IOError)?.errnoCode }.first
            return PostgresFailure(description: errno == ECONNREFUSED
                ? "nothing accepts connections at \(connecting.host):\(connecting.port); is PostgreSQL running there?"
                : "cannot reach \(connecting.host):\(connecting.port)" + (errno.map { ": \(String(cString: strerror($0)).lowercased())" } ?? ""))
        }
        if error.code == .connectionError, error.underlying is ChannelError {
            return PostgresFailure(description: "the server did not answer in time")
        }
        if let io = error.underlying as? IOError {
            return PostgresFailure(description: "the connection failed: \(String(cString: strerror(io.errnoCode)).lowercased())")
        }
        if error.code == .serverClosedConnection {
            return PostgresFailure(description: "the connection was closed before the server answered" + (error.underlying.map { " (\($0))" } ?? ""))
        }
        return PostgresFailure(description: "\(error.code)" + (error.underlying.map { ": \($0)" } ?? ""))
    }
}

/// Whether a transaction got its connection or gave up waiting for one: whichever happens
/// first wins.
final class LeaseWait: Sendable {
    private enum State { case waiting, started, abandoned }
    private let state = Mutex(State.waiting)

    /// True when the transaction may run: it has not been abandoned.
    func start() -> Bool {
        state.withLock {
            guard $0 == .waiting else { return false }
            $0 = .started
            return true
        }
    }

    /// True when the wait is abandoned: the transaction had not started.
    func abandon() -> Bool {
        state.withLock {
            guard $0 == .waiting else { return false }
            $0 = .abandoned
            return true
        }
    }
}

/// A PostgreSQL failure, told in a sentence.
struct PostgresFailure: Error, CustomStringConvertible, Sendable {
    var description: String
}

/// Rings after each committed transaction that added outbox rows, for the deliverers of this
/// process (``OutboxQueue/outboxInsertions()``).
final class OutboxInsertions: Sendable {
    private let continuations = Mutex<[UUID: AsyncStream<Void>.Continuation]>([:])

    func stream() -> AsyncStream<Void> {
        let (stream, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let id = UUID()
        continuations.withLock { $0[id] = continuation }
        continuation.onTermination = { [weak self] _ in _ = self?.continuations.withLock { $0.removeValue(forKey: id) } }
        return stream
    }

    func ring() {
        for continuation in continuations.withLock({ Array($0.values) }) { continuation.yield() }
    }
}
