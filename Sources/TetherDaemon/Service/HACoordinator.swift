import Foundation
import Logging
import Metrics
import ServiceLifecycle
import Synchronization
import TetherConfig
import TetherCore
import TetherEngine
import TetherStore

/// This node's part among several daemons on one PostgreSQL store (SPEC §14), as the public
/// listener and `tether status` read it.
package final class Leadership: Sendable {
    package struct State: Sendable, Equatable {
        package var node: String
        package var leading = false
        package var epoch: Int?
        /// When this node took the lease; nil while it follows.
        package var leadingSince: Date?
        /// The leader as the lease last named it, and where it is reached.
        package var leader: String?
        package var leaderAddress: String?
        /// When this node's index first fell behind the store's head; nil when caught up.
        package var behindSince: Date?
        /// Whether the connection that hears commits is up.
        package var listening = false
        /// Whether the lease has been read once: until then, who leads is not known, and a
        /// write forwarded or refused in that moment would be answered `no_leader`.
        package var leaseRead = false
        package var nodes: [NodeReport] = []
    }

    private let state: Mutex<State>

    package init(node: String) { state = Mutex(State(node: node)) }

    package var current: State { state.withLock { $0 } }

    func update(_ change: (inout State) -> Void) { state.withLock { change(&$0) } }

    /// How far this node's index is behind the store, as of `now`.
    package func lag(at now: Date) -> TimeInterval {
        state.withLock { $0.behindSince.map { max(0, now.timeIntervalSince($0)) } ?? 0 }
    }
}

/// Holds or follows the lease: the leader runs the work only one node may do (the directory
/// source, the reconciliation timer and scheduled leavers, target delivery and drift, audit
/// checkpoints); every node keeps its check index current from the commits it hears of.
///
/// A node that loses its lease (it could not renew in time, or found another holder) stops
/// that work at once and follows; its store is fenced, so whatever it still had in flight
/// cannot commit.
package final class HACoordinator: Service, Sendable {
    let store: PostgresStateStore
    let engine: Engine
    let configuration: HAConfiguration
    let address: String
    let state: DaemonState
    let listeners: ListenerReadiness
    let heartbeat: Heartbeat
    package let leadership: Leadership
    /// The services only the leader runs, started when this node takes the lease and
    /// stopped when it loses it.
    let leaderServices: [any Service]
    let logger: Logger
    private let leaderGauge = Gauge(label: "tether_leader")
    private let epochGauge = Gauge(label: "tether_ha_epoch")
    private let lagGauge = Gauge(label: "tether_index_lag_seconds")
    /// Asks the follower's loop to catch up now (nil), or announces a revision.
    private let catchUpNow = Mutex<AsyncStream<Int?>.Continuation?>(nil)

    package init(
        store: PostgresStateStore, engine: Engine, configuration: HAConfiguration, address: String, state: DaemonState,
        listeners: ListenerReadiness, heartbeat: Heartbeat, leadership: Leadership, leaderServices: [any Service], logger: Logger
    ) {
        self.store = store
        self.engine = engine
        self.configuration = configuration
        self.address = address
        self.state = state
        self.listeners = listeners
        self.heartbeat = heartbeat
        self.leaderServices = leaderServices
        self.logger = logger
        self.leadership = leadership
        // Nothing is written until the lease says this node leads, and a write frozen in
        // flight holds its locks no longer than a lease.
        store.fence(node: configuration.node, epoch: nil)
        store.limitIdleWrites(to: configuration.leaseDuration)
    }

    package func run() async throws {
        leaderGauge.record(0)
        // At shutdown the loops stop at once, even while they wait for a database that is down.
        try? await cancelOnGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.follow() }
                group.addTask { await self.holdLease() }
                await group.next()
                group.cancelAll()
            }
        }
        // A clean stop hands the lease over at once instead of after it expires; a database
        // that does not answer within a second gets it back when it expires.
        if leadership.current.leading {
            store.fence(node: configuration.node, epoch: nil)
            let (store, node) = (store, configuration.node)
            await withTaskGroup(of: Void.self) { group in
                group.addTask { try? await store.releaseLease(node: node) }
                group.addTask { try? await Task.sleep(for: .seconds(1)) }
                await group.next()
                group.cancelAll()
            }
        }
    }

    /// Renews or takes the lease every `renewInterval`, starting the leader's work on taking
    /// it and stopping it on losing it; ends at shutdown.
    private func holdLease() async {
        var leaderWork: LeaderWork?
        var renewedAt: ContinuousClock.Instant?
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            heartbeat.beat()
            var lease: Lease?
            do {
                lease = try await store.acquireLease(node: configuration.node, address: address, duration: configuration.leaseDuration)
            } catch {
                if Task.isCancelled { break }
                logger.warning(
                    "the lease could not be renewed or read; this node keeps its role until the lease would expire",
                    metadata: ["node": "\(configuration.node)", "error": "\(error)"])
            }
            let now = ContinuousClock.now
            let firstRead = lease != nil && !leadership.current.leaseRead
            if let lease, lease.holder == configuration.node {
                renewedAt = now
                if !leadership.current.leading {
                    leaderWork = await lead(epoch: lease.epoch)
                }
            } else if leadership.current.leading {
                // Another node holds it, or this one could not renew in time.
                let expired = renewedAt.map { now - $0 >= configuration.leaseDuration } ?? true
                if lease != nil || expired {
                    await stepDown(leaderWork, holder: lease?.holder)
                    leaderWork = nil
                }
            }
            if let lease {
                leadership.update {
                    $0.leader = lease.remaining > .zero ? lease.holder : nil
                    $0.leaderAddress = lease.remaining > .zero ? lease.address : nil
                    $0.leaseRead = true
                }
            }
            await report()
            if firstRead { await listeners.settled(Self.leaseCondition) }
            try? await Task.sleep(for: configuration.renewInterval)
        }
        // Shutting down: the leader's work stops as it does at a daemon's clean stop.
        await leaderWork?.stop()
    }

    /// The leader's services, run in a service group of their own while this node leads.
    struct LeaderWork {
        let group: ServiceGroup
        let task: Task<Void, Never>

        /// Shuts the services down gracefully (a transaction in flight finishes) and waits.
        func stop() async {
            await group.triggerGracefulShutdown()
            await task.value
        }
    }

    /// Takes up the leader's work under `epoch`: the store's writes fenced by it, the engine's
    /// view of the store read afresh, then the leader's services started.
    private func lead(epoch: Int) async -> LeaderWork {
        store.fence(node: configuration.node, epoch: epoch)
        leadership.update {
            $0.leading = true
            $0.epoch = epoch
            $0.leadingSince = Date()
            $0.leader = configuration.node
            $0.leaderAddress = address
        }
        leaderGauge.record(1)
        epochGauge.record(epoch)
        logger.notice("this node leads", metadata: ["node": "\(configuration.node)", "epoch": "\(epoch)"])
        let group = ServiceGroup(
            configuration: .init(services: leaderServices.map { .init(service: $0) }, gracefulShutdownSignals: [], logger: logger))
        let (engine, logger) = (engine, logger)
        let task = Task {
            do {
                try await engine.refreshFromStore()
            } catch {
                logger.error("the leader could not read the store; its work starts from what it had", metadata: ["error": "\(error)"])
            }
            do {
                try await group.run()
            } catch {
                logger.error("the leader's work stopped", metadata: ["error": "\(error)"])
            }
        }
        return LeaderWork(group: group, task: task)
    }

    /// Stops the leader's work and follows: nothing this node still had in flight commits.
    private func stepDown(_ work: LeaderWork?, holder: String?) async {
        store.fence(node: configuration.node, epoch: nil)
        leadership.update {
            $0.leading = false
            $0.epoch = nil
            $0.leadingSince = nil
        }
        leaderGauge.record(0)
        // What the new leader committed meanwhile is read at once.
        _ = catchUpNow.withLock { $0?.yield(nil) }
        logger.warning(
            "this node lost the lease and follows; the leader's work stops here",
            metadata: ["node": "\(configuration.node)", "leader": "\(holder ?? "none")"])
        await work?.stop()
    }

    /// Keeps the check index current from the commits any node announces, with a catch-up
    /// read on every (re)connection and a polling backstop every `renewInterval`.
    private func follow() async {
        let revisions = store.revisions(logger: logger)
        var caughtUpOnce = false
        await withTaskGroup(of: Void.self) { group in
            let (stream, continuation) = AsyncStream.makeStream(of: Int?.self, bufferingPolicy: .bufferingNewest(1))
            catchUpNow.withLock { $0 = continuation }
            group.addTask {
                for await event in revisions {
                    switch event {
                    case .listening:
                        self.leadership.update { $0.listening = true }
                        await self.updateReadiness()
                        continuation.yield(nil)
                    case .lost:
                        self.leadership.update { $0.listening = false }
                        await self.updateReadiness()
                    case .committed(let revision):
                        continuation.yield(revision)
                    }
                }
                continuation.finish()
            }
            group.addTask {
                while !Task.isCancelled {
                    try? await Task.sleep(for: self.configuration.renewInterval)
                    continuation.yield(nil)
                }
            }
            for await announced in stream {
                if Task.isCancelled || Task.isShuttingDownGracefully { break }
                // The leader's index follows its own commits as they land; its readiness is its
                // first reconciliation's.
                if leadership.current.leading {
                    leadership.update { $0.behindSince = nil }
                    continue
                }
                if let announced, announced <= engine.index.revision { continue }
                if announced != nil, leadership.current.behindSince == nil {
                    leadership.update { $0.behindSince = Date() }
                }
                do {
                    try await catchUp()
                    if !caughtUpOnce {
                        caughtUpOnce = true
                        await state.mark(.firstReconciliation)
                    }
                } catch {
                    logger.warning("the check index could not catch up with the store; it tries again", metadata: ["error": "\(error)"])
                }
            }
            group.cancelAll()
        }
    }

    /// Reads what other nodes committed since the index's revision and takes it in. The
    /// leader's own commits update its index as they land; it reads only what others wrote
    /// before it led.
    private func catchUp() async throws {
        let changes = try await store.changes(after: engine.index.revision)
        if changes.needsReload {
            try await engine.refreshFromStore()
        } else if changes.head > engine.index.revision {
            engine.index.catchUp(changes)
        }
        if engine.index.revision >= changes.head {
            leadership.update { $0.behindSince = nil }
        } else if leadership.current.behindSince == nil {
            leadership.update { $0.behindSince = Date() }
        }
        lagGauge.record(leadership.lag(at: Date()))
    }

    /// Says where this node stands: to `/readyz`, then in the store for the other nodes.
    private func report() async {
        await updateReadiness()
        let current = leadership.current
        let role = current.leading ? "leader" : "follower"
        if let nodes = try? await store.report(node: configuration.node, address: address, role: role, revision: engine.index.revision) {
            leadership.update { $0.nodes = nodes }
        }
    }

    /// What `/readyz` says of this node: a stale or lagging index is not ready.
    private func updateReadiness() async {
        let current = leadership.current
        let lag = leadership.lag(at: Date())
        lagGauge.record(lag)
        var problems: [String] = []
        if !current.leaseRead {
            problems.append(Self.leaseUnread)
        }
        if !current.listening {
            problems.append("not listening for commits: the index may be stale")
        }
        if lag > Self.seconds(configuration.maxLag) {
            problems.append("the check index is \(Int(lag)) s behind the store (ha.maxLag \(ConfigurationDuration.format(configuration.maxLag)))")
        }
        await state.setHAProblems(problems)
    }

    /// What `READY=1` waits for besides the listeners.
    static let leaseCondition = "lease read"

    /// Why a node is not ready before it has read the lease once.
    static let leaseUnread = "waiting: the lease read, to know which node leads"

    static func seconds(_ duration: Duration) -> TimeInterval {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
