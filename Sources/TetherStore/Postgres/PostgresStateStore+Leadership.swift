import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Synchronization
import TetherCore

/// The lease one node of several holds to lead (SPEC §14), as the database records it.
public struct Lease: Sendable, Hashable {
    /// The node that holds it.
    public var holder: String
    /// Where the holder's public listener is reached.
    public var address: String
    /// Grows by one each time the lease changes hands: what fences a leader that lost it.
    public var epoch: Int
    /// How long it is still held, by the server's clock.
    public var remaining: Duration
}

/// A node as it last reported itself.
public struct NodeReport: Sendable, Hashable {
    public var node: String
    public var address: String
    public var role: String
    public var revision: Int
    /// How long ago, by the server's clock.
    public var age: Duration
}

/// Refused: this node no longer holds the lease it wrote under (or never did); nothing was written.
public struct NotLeader: Error, CustomStringConvertible, Sendable {
    public var node: String
    public var epoch: Int?
    public var description: String {
        "node \(node) does not hold the lease" + (epoch.map { " of epoch \($0)" } ?? "") + "; the write was not committed"
    }
}

/// What a follower's check index must take in to reach the store's head.
public struct RevisionChanges: Sendable {
    /// The store's head: the seq of its newest audit record.
    public var head: Int
    /// Every grant whose audit records changed after the revision asked from: the grant and
    /// its policy as stored now, or nil when it is gone.
    public var grants: [String: (grant: Grant, policy: String)?]
    /// The subject and agent of each grant in ``grants``, as its audit records name them.
    public var owners: [String: (subject: String, agent: String)]
    /// The userNames whose records changed, with the statuses of every identity of each.
    public var statuses: [String: [IdentityID: IdentityStatus]]
    /// Records of other kinds (agents, exceptions, configuration): the index is reloaded whole.
    public var needsReload: Bool
}

extension PostgresStateStore {
    /// Fences every write: from now on, a write transaction commits only while the lease is
    /// `node`'s at `epoch` (nil: this node is not the leader and writes nothing).
    public func fence(node: String, epoch: Int?) {
        fencing.withLock { $0 = Fencing(node: node, epoch: epoch) }
    }

    /// Checks, inside a write transaction, that this node still holds the lease it writes
    /// under. The lease row is read `FOR SHARE`: a node taking the lease over waits until this
    /// transaction ends, so a leader's last write commits before its successor's first.
    func checkFence(in session: PostgresSession) throws {
        guard let fence = fencing.withLock({ $0 }) else { return }
        guard let epoch = fence.epoch else { throw NotLeader(node: fence.node, epoch: nil) }
        let held = try session.value(
            Bool.self,
            "SELECT TRUE FROM tether_lease WHERE id = 1 AND holder = ? AND epoch = ? AND expiresAt > clock_timestamp() FOR SHARE",
            [fence.node, epoch])
        guard held == true else { throw NotLeader(node: fence.node, epoch: epoch) }
    }

    /// Takes the lease for `node` if it is free or expired, or renews it if `node` holds it;
    /// returns the lease as it stands afterwards, whoever holds it.
    public func acquireLease(node: String, address: String, duration: Duration) async throws -> Lease {
        let milliseconds = Int64(duration.components.seconds * 1_000 + duration.components.attoseconds / 1_000_000_000_000_000)
        return try await session { session in
            // One statement, committed on its own: a node frozen between two statements of a
            // transaction would hold the lease row locked, and its successor would wait.
            try session.execute(
                """
                INSERT INTO tether_lease (id, holder, address, epoch, expiresAt)
                VALUES (1, ?, ?, 1, clock_timestamp() + make_interval(secs => ? / 1000.0))
                ON CONFLICT (id) DO UPDATE SET
                    epoch = CASE WHEN tether_lease.holder = excluded.holder THEN tether_lease.epoch ELSE tether_lease.epoch + 1 END,
                    holder = excluded.holder, address = excluded.address, expiresAt = excluded.expiresAt
                WHERE tether_lease.holder = excluded.holder OR tether_lease.expiresAt <= clock_timestamp()
                """,
                [node, address, milliseconds])
            guard let lease = try Self.lease(in: session) else {
                throw StoreError(.read, "the lease row is missing after it was written")
            }
            return lease
        }
    }

    /// Test hook: opens a fenced write transaction and keeps it open for `duration`, holding
    /// the lease row as every write does, as a leader frozen in the middle of a write would.
    public func holdWriteOpen(for duration: Duration) {
        Task {
            try? await write("a held write") { _ in
                Thread.sleep(forTimeInterval: Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18)
            }
        }
    }

    /// Gives the lease up at once (a clean stop): another node may take it without waiting.
    public func releaseLease(node: String) async throws {
        try await session { session in
            try session.execute("UPDATE tether_lease SET expiresAt = clock_timestamp() WHERE id = 1 AND holder = ?", [node])
        }
    }

    /// The lease as it stands; nil when no node ever held it.
    public func currentLease() async throws -> Lease? {
        try await session { session in try Self.lease(in: session) }
    }

    private static func lease(in session: PostgresSession) throws -> Lease? {
        guard
            let row = try session.query(
                """
                SELECT holder, address, epoch,
                    (EXTRACT(EPOCH FROM (expiresAt - clock_timestamp())) * 1000)::bigint
                FROM tether_lease WHERE id = 1
                """
            ).first
        else { return nil }
        return Lease(
            holder: try row.get(0), address: try row.get(1), epoch: try row.get(2),
            remaining: .milliseconds(max(0, try row.get(3, as: Int64.self))))
    }

    /// Records what `node` says of itself; returns every node's last report.
    @discardableResult
    public func report(node: String, address: String, role: String, revision: Int) async throws -> [NodeReport] {
        try await session { session in
            try session.execute(
                """
                INSERT INTO tether_nodes (node, address, role, revision, seenAt) VALUES (?, ?, ?, ?, clock_timestamp())
                ON CONFLICT (node) DO UPDATE SET address = excluded.address, role = excluded.role,
                    revision = excluded.revision, seenAt = excluded.seenAt
                """,
                [node, address, role, revision])
            return try session.query(
                """
                SELECT node, address, role, revision, (EXTRACT(EPOCH FROM (clock_timestamp() - seenAt)) * 1000)::bigint
                FROM tether_nodes ORDER BY node
                """
            ).map { row in
                NodeReport(
                    node: try row.get(0), address: try row.get(1), role: try row.get(2), revision: try row.get(3),
                    age: .milliseconds(try row.get(4, as: Int64.self)))
            }
        }
    }

    /// What changed after `revision`, for a follower's index: at most `limit` records are
    /// looked at; past that, ``RevisionChanges/needsReload``.
    public func changes(after revision: Int, limit: Int = 10_000) async throws -> RevisionChanges {
        try await read { session in
            let head = try session.value(Int.self, "SELECT MAX(seq) FROM audit") ?? 0
            guard head > revision else { return RevisionChanges(head: head, grants: [:], owners: [:], statuses: [:], needsReload: false) }
            guard head - revision <= limit else { return RevisionChanges(head: head, grants: [:], owners: [:], statuses: [:], needsReload: true) }
            var owners: [String: (subject: String, agent: String)] = [:]
            var subjects: Set<String> = []
            var needsReload = false
            for row in try session.query(
                "SELECT action, grantId, subject, agent FROM audit WHERE seq > ? AND seq <= ?", [revision, head])
            {
                let action: String = try row.get(0)
                let subject = try row.get(2, as: String?.self)
                if let subject { subjects.insert(subject) }
                if let grant = try row.get(1, as: String?.self) {
                    if let subject, let agent = try row.get(3, as: String?.self) {
                        owners[grant] = (subject, agent)
                    } else {
                        needsReload = true
                    }
                }
                if !Self.incrementalActions.contains(where: { action.hasPrefix($0) }) { needsReload = true }
            }
            let grantIDs = Array(owners.keys)
            var grants: [String: (grant: Grant, policy: String)?] = Dictionary(uniqueKeysWithValues: grantIDs.map { ($0, nil) })
            if !grantIDs.isEmpty {
                for row in try session.query(
                    "SELECT id, subject, agent, scope, resource, policy FROM grants WHERE id = ANY(?)", [grantIDs])
                {
                    let grant = Grant(subject: try row.get(1), agent: try row.get(2), scope: try row.get(3), resource: try row.get(4))
                    grants[try row.get(0)] = (grant, try row.get(5))
                }
            }
            var statuses: [String: [IdentityID: IdentityStatus]] = [:]
            if !subjects.isEmpty {
                for row in try session.query("SELECT userName, id, status FROM identities WHERE userName = ANY(?)", [Array(subjects)]) {
                    if let status = IdentityStatus(rawValue: try row.get(2)) {
                        statuses[try row.get(0), default: [:]][try row.get(1)] = status
                    }
                }
                // A subject with no record left: its statuses are emptied.
                for subject in subjects where statuses[subject] == nil { statuses[subject] = [:] }
            }
            return RevisionChanges(head: head, grants: grants, owners: owners, statuses: statuses, needsReload: needsReload)
        }
    }

    /// Checks that a notification sent through the store's connections reaches a listening
    /// connection within `timeout`. It does not behind a pooler in transaction mode, which
    /// hands LISTEN's session to other clients: then followers would hear no commit.
    public func checkNotifications(timeout: Duration = .seconds(5), logger: Logger) async throws {
        let token = UUID().uuidString
        let connection = try await PostgresConnection.connect(
            on: MultiThreadedEventLoopGroup.singleton.next(), configuration: try settings.connectionConfiguration(), id: 2,
            logger: logger)
        let heard = Heard()
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await connection.listen(on: Self.probeChannel) { notifications in
                        for try await notification in notifications where notification.payload == token {
                            heard.set()
                            return
                        }
                    }
                }
                group.addTask {
                    // LISTEN takes effect when its statement completes; notify until heard or the time is up.
                    let deadline = ContinuousClock.now + timeout
                    while ContinuousClock.now < deadline, !heard.value {
                        try await self.session { session in try session.execute("SELECT pg_notify(?, ?)", [Self.probeChannel, token]) }
                        try await Task.sleep(for: .milliseconds(100))
                    }
                }
                try await group.next()
                group.cancelAll()
            }
        } catch is CancellationError {
        } catch {
            try? await connection.close()
            throw StoreError(.open, "cannot check that notifications reach this node", underlying: Self.plain(error))
        }
        try? await connection.close()
        guard heard.value else {
            throw StoreError(
                .open,
                "notifications sent through \(settings.url) do not reach a listening connection, so followers would not hear "
                    + "commits: LISTEN needs a session of its own. Connect to PostgreSQL directly, or through a pooler in session mode")
        }
    }

    static let probeChannel = "tether_probe"

    /// The audit actions a follower's index follows record by record; any other reloads it.
    static let incrementalActions = ["grant.", "identity.", "event.", "plan.", "review.", "resync.", "source.", "decisions."]

    /// The notification channel commits announce their revision on.
    static let revisionChannel = "tether_revision"

    /// What the connection that listens for commits hears.
    public enum RevisionEvent: Sendable, Equatable {
        /// It is (again) listening: notifications sent while it was not are lost, so the
        /// listener catches up by reading.
        case listening
        /// It lost its connection; it connects again by itself.
        case lost
        /// A commit of any node sealed audit records up to this revision.
        case committed(Int)
    }

    /// What each commit of any node announces (LISTEN/NOTIFY), on a connection of its own
    /// (LISTEN is session state a pooler in transaction mode would not keep). Reconnects
    /// with a growing pause until the stream ends.
    public func revisions(logger: Logger) -> AsyncStream<RevisionEvent> {
        let settings = settings
        return AsyncStream(bufferingPolicy: .bufferingNewest(64)) { continuation in
            let task = Task {
                var pause = Duration.milliseconds(100)
                var connected = true
                while !Task.isCancelled {
                    do {
                        let connection = try await PostgresConnection.connect(
                            on: MultiThreadedEventLoopGroup.singleton.next(), configuration: try settings.connectionConfiguration(),
                            id: 1, logger: logger)
                        do {
                            try await connection.listen(on: Self.revisionChannel) { notifications in
                                if !connected { logger.notice("listening for commits again", metadata: ["database": "\(settings.url)"]) }
                                connected = true
                                pause = .milliseconds(100)
                                continuation.yield(.listening)
                                for try await notification in notifications {
                                    if let revision = Int(notification.payload) { continuation.yield(.committed(revision)) }
                                }
                            }
                        } catch {
                            try? await connection.close()
                            throw error
                        }
                        try? await connection.close()
                    } catch {
                        if Task.isCancelled { break }
                        if connected {
                            logger.warning(
                                "the connection that listens for commits is down; checks are answered from the index as it is until it is back",
                                metadata: ["database": "\(settings.url)", "error": "\(Self.plain(error))"])
                        }
                        connected = false
                        continuation.yield(.lost)
                    }
                    try? await Task.sleep(for: pause)
                    pause = min(pause * 2, .seconds(5))
                }
                continuation.finish()
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }
}

/// Whether the probe's notification arrived.
private final class Heard: Sendable {
    private let heard = Mutex(false)
    var value: Bool { heard.withLock { $0 } }
    func set() { heard.withLock { $0 = true } }
}

/// The node and epoch a fenced store writes under.
struct Fencing: Sendable {
    var node: String
    var epoch: Int?
}
