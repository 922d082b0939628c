import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import Prometheus
import ServiceLifecycle
import TetherConfig
import TetherCore
import TetherEngine
import TetherHTTP
import TetherLDAP
import TetherSCIM
import TetherStore
import TetherTargets
#if canImport(Glibc)
import Glibc
#endif

/// Every long-lived part of the daemon, wired from a configuration, its credentials and an
/// open store into one `ServiceGroup`, the way a Hummingbird `buildApplication` wires an
/// application: `Daemon.run` runs it in the daemon's process, a test runs it in its own.
package struct DaemonServices: Sendable {
    /// Starts the services in order and shuts them down in reverse: the shutdown is announced
    /// first, then the listeners stop accepting, and the log checkpointer stops last.
    package let group: ServiceGroup
    /// The engine every service shares.
    package let engine: Engine
    /// The configuration in force and readiness, as `/readyz` and `tether status` see them.
    package let state: DaemonState
    /// Where the listeners are bound, and whether both are.
    package let listeners: ListenerReadiness
    /// The decision log's writer, with its queue and file.
    package let decisionLog: DecisionLogWriter
    let socketPath: String

    /// How the services meet the process they run in.
    package struct Options: Sendable {
        /// SIGTERM and SIGINT shut the group down and SIGHUP reloads the configuration. A test
        /// process that runs daemons leaves its own signals alone.
        package var handlesSignals: Bool
        /// The admin routes tests use to inject faults (`TETHER_TEST_HOOKS=1`).
        package var testHooks: Bool
        /// With test hooks: the first complete directory read waits after this page of people
        /// until `/v1/debug/release-read` (`TETHER_TEST_HOLD_READ_AT_PAGE`).
        package var holdReadAtPage: Int?
        /// Called by the decision log's writer before each batch it writes (a test holds it
        /// there to fill the queue); nil in the daemon.
        package var beforeDecisionWrite: (@Sendable (Int) async -> Void)?

        /// The wall clock audit checkpoints are made by; a test moves it instead of sleeping.
        package var clock: any WallClock
        /// The longest real sleep before the checkpoint service reads `clock` again.
        package var checkpointTick: Duration
        /// The wall clock the engine decides by (review due dates, exception ends, scheduled
        /// leavers); a test moves it instead of waiting days.
        package var engineClock: any WallClock = SystemWallClock()

        /// Signals handled and test hooks off unless asked, as `tether serve` runs.
        package init(
            handlesSignals: Bool = true, testHooks: Bool = false, holdReadAtPage: Int? = nil,
            clock: any WallClock = SystemWallClock(), checkpointTick: Duration = .seconds(1)
        ) {
            self.handlesSignals = handlesSignals
            self.testHooks = testHooks
            self.holdReadAtPage = testHooks ? holdReadAtPage : nil
            self.clock = clock
            self.checkpointTick = checkpointTick
        }
    }

    /// A setting the daemon cannot start with (a target, the admin group): `tether serve`
    /// prints it and exits 2, like a configuration the loader rejects.
    package struct RefusedSetting: Error, CustomStringConvertible {
        /// What is wrong, naming the setting.
        package let underlying: any Error
        /// The underlying error's own text.
        package var description: String { "\(underlying)" }
    }

    /// Builds the engine, the listeners and every service on `store`, and loads the check index,
    /// so that checks are answered from the first request. Nothing listens until the group runs.
    /// Throws ``RefusedSetting`` for a setting the daemon cannot start with; other errors are
    /// failures of the store or of the admin socket's folder.
    package static func build(
        loaded: LoadedConfiguration, configPath: String, credentials: ListenerCredentials, store: any DaemonStore,
        registry: PrometheusCollectorRegistry, notifier: SystemdNotifier, logger: Logger, options: Options = Options()
    ) async throws -> DaemonServices {
        let configuration = loaded.configuration
        let engine = Engine(store: store, configuration: loaded.engineConfiguration, clock: options.engineClock)
        let state = DaemonState(loaded: loaded, configPath: configPath)
        let heartbeat = Heartbeat()
        let progress = WorkProgress(notifier: notifier, previousPeople: try await store.sourceStates()[.ldap]?.lastScanUsers)
        let metrics = DaemonMetrics(registry: registry, store: store, engine: engine, state: state, progress: progress, usage: store)
        let deliverers: [OutboxDeliveryService]
        let drift: DriftChecker
        do {
            deliverers = try OutboxDeliveryService.services(for: configuration.targets, store: store, logger: logger)
            drift = try DriftChecker(engine: engine, configurations: configuration.targets, logger: logger)
        } catch {
            throw RefusedSetting(underlying: error)
        }
        do {
            // The notify target's secret is read at each campaign: one that cannot be read now
            // would fail the first campaign's links.
            _ = try configuration.reviews.notify.map(ReviewNotifier.init)
        } catch {
            throw RefusedSetting(underlying: error)
        }
        let checkpoints = try auditCheckpointServices(
            configuration: configuration.audit, file: loaded.file, store: store, options: options, logger: logger)
        let checkDrift: (@Sendable () async throws -> Void)? =
            configuration.targets.isEmpty ? nil : { @Sendable in _ = try await drift.checkAll() }
        let reconciler = ReconcilerService(
            engine: engine, state: state, heartbeat: heartbeat, logger: logger,
            fullInterval: configuration.sources.ldap?.fullScanInterval ?? .seconds(15 * 60), progress: progress,
            afterFullReconciliation: checkDrift)

        let decisionLog = try decisionLogWriter(
            configuration: configuration, engine: engine, store: store, registry: registry, options: options, logger: logger)
        // Among several daemons, READY=1 waits until this node has read the lease: a write it
        // took before knowing which node leads would be refused.
        let listeners = ListenerReadiness(
            expected: 2, awaiting: store is PostgresStateStore ? [HACoordinator.leaseCondition] : [], notifier: notifier, logger: logger)
        let access = APIAccess(hr: credentials.hr, checkTokens: credentials.checkTokens)
        let scimCredentials = credentials.scimTokens.map { SCIMCredentials(tokens: $0) }
        let reloader = ConfigurationReloader(
            state: state, engine: engine, access: access, scim: scimCredentials, notifier: notifier, logger: logger)
        // Checks are answered from the index: load it before any listener opens.
        try await engine.loadIndex()
        // Several daemons on PostgreSQL (SPEC §14): this node leads or follows.
        let postgres = store as? PostgresStateStore
        let leadership = postgres.map { _ in Leadership(node: configuration.ha.node) }
        if let postgres {
            // Not ready until the lease is read and this node knows whether it leads.
            await state.setHAProblems([HACoordinator.leaseUnread])
            // Followers learn of commits by notification: a pooler that would lose them is refused.
            do {
                try await postgres.checkNotifications(logger: logger)
            } catch {
                throw RefusedSetting(underlying: error)
            }
        }
        let readHold = options.testHooks ? ReadHold(page: options.holdReadAtPage) : nil
        var tuning = LDAPSourceService.Tuning()
        if let readHold { tuning.afterPage = { search, page in await readHold.wait(search: search, page: page) } }
        let ldap = configuration.sources.ldap.map {
            LDAPSourceService(
                configuration: $0, engine: engine, store: store, logger: logger, tuning: tuning,
                observer: { progress.observe($0) })
        }
        let adminRouter = Router(context: AdminContext.self)
        let peer = credentials.peerSecret.map(PeerSignature.init)
        if let leadership { adminRouter.add(middleware: FollowerAdminMiddleware(leadership: leadership, peer: peer, logger: logger)) }
        AdminController(
            engine: engine, store: store, state: state, reconciler: reconciler, reloader: reloader, leadership: leadership,
            ingest: JSONLinesIngest(engine: engine, clock: SystemWallClock()), resync: ldap,
            drift: configuration.targets.isEmpty ? nil : drift, progress: progress, readHold: readHold, testHooks: options.testHooks,
            logger: logger
        ).addRoutes(to: adminRouter)
        let admin = try adminListener(
            router: adminRouter, configuration: configuration.admin, state: state, listeners: listeners, logger: logger)
        // The other nodes hand this one operator commands while it leads (SPEC §14).
        let peerAdmin = peer.map { PeerAdminMiddleware<BasicRequestContext>(peer: $0, admin: adminRouter.buildResponder(), logger: logger) }
        let http = publicListener(
            configuration: configuration, engine: engine, store: store, access: access, scim: scimCredentials,
            decisions: decisionLog.queue, health: HealthController(state: state, metrics: metrics), state: state,
            listeners: listeners, forwarding: leadership.map { LeaderForwarding(leadership: $0, logger: logger) },
            peerAdmin: peerAdmin, logger: logger)

        // Started in this order, shut down in reverse: the shutdown is announced first, then
        // listeners stop accepting before the reconcile loop ends, so the transaction in
        // flight finishes, and the log is checkpointed once every writer has stopped.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: WatchdogService(notifier: notifier, heartbeat: heartbeat, logger: logger), successTerminationBehavior: .ignore),
        ]
        services += store.services.map { .init(service: $0) }
        // The work only one node may do: all of it here, or the leader's only.
        let leaderWork: [any Service] = checkpoints + [reconciler] + deliverers + (ldap.map { [$0] } ?? [])
        if let postgres, let leadership {
            services.append(.init(service: progress, successTerminationBehavior: .ignore))
            services.append(.init(service: HACoordinator(
                store: postgres, engine: engine, configuration: configuration.ha,
                address: configuration.ha.address ?? "http://\(configuration.http.listen)", state: state, listeners: listeners,
                heartbeat: heartbeat, leadership: leadership, leaderServices: leaderWork, logger: logger)))
            services.append(.init(service: UsageFlushService(
                recorder: engine.index.usage, store: store, interval: configuration.usage.flushInterval, logger: logger)))
        } else {
            // After every writer of audit records has stopped, the last checkpoint covers them all.
            services += checkpoints.map { .init(service: $0) }
            services.append(.init(service: progress, successTerminationBehavior: .ignore))
            services.append(.init(service: reconciler))
            // Stopped before the reconcile loop and the log checkpointer, after the listeners: the
            // last flush holds every check answered.
            services.append(.init(service: UsageFlushService(
                recorder: engine.index.usage, store: store, interval: configuration.usage.flushInterval, logger: logger)))
            services += deliverers.map { .init(service: $0) }
            if let ldap { services.append(.init(service: ldap)) }
        }
        if options.handlesSignals { services.append(.init(service: ReloadSignalService(reloader: reloader, logger: logger))) }
        // Shut down after the public listener: it stores the checks answered until then.
        services.append(.init(service: decisionLog))
        services.append(.init(service: admin))
        services.append(.init(service: http))
        services.append(.init(service: StoppingNotifier(notifier: notifier, logger: logger), successTerminationBehavior: .ignore))
        let group = ServiceGroup(
            configuration: .init(
                services: services,
                gracefulShutdownSignals: options.handlesSignals ? [.sigterm, .sigint] : [],
                logger: logger))
        return DaemonServices(
            group: group, engine: engine, state: state, listeners: listeners, decisionLog: decisionLog,
            socketPath: configuration.admin.socket)
    }

    /// The services that sign audit checkpoints and send them to `audit.checkpointTarget`;
    /// none without `audit.signingKeyFile`. The key is read now: one that cannot be used is a
    /// ``RefusedSetting`` located at `audit.signingKeyFile`.
    private static func auditCheckpointServices(
        configuration: AuditConfiguration, file: String, store: any DaemonStore, options: Options, logger: Logger
    ) throws -> [any Service] {
        let key: AuditSigningKey?
        let publisher: CheckpointPublisher?
        do {
            key = try configuration.signingKey(file: file)
            publisher = try configuration.checkpointTarget.map { try CheckpointPublisher(configuration: $0, store: store, logger: logger) }
        } catch {
            throw RefusedSetting(underlying: error)
        }
        guard let key else { return [] }
        let signer = AuditCheckpointService(
            store: store, key: key, interval: configuration.checkpointInterval, clock: options.clock, tick: options.checkpointTick,
            logger: logger, stored: { publisher?.wake() })
        var services: [any Service] = []
        if let publisher { services.append(publisher) }
        services.append(signer)
        return services
    }

    /// Runs every service until a graceful shutdown has stopped them all, then removes the admin socket.
    package func run() async throws {
        try await group.run()
        unlink(socketPath)
    }

    /// The decision log (SPEC §16): its queue, given to the check, and the writer that stores
    /// it in its own file (in the database's `decisions` table on PostgreSQL), with
    /// `tether_decisions_written_total` and `tether_decisions_dropped_total` on `/metrics`.
    private static func decisionLogWriter(
        configuration: Configuration, engine: Engine, store daemonStore: any DaemonStore, registry: PrometheusCollectorRegistry,
        options: Options, logger: Logger
    ) throws -> DecisionLogWriter {
        let settings = configuration.check.log
        let written = registry.makeCounter(
            name: "tether_decisions_written_total", help: "Check decisions stored in the decision log")
        let dropped = registry.makeCounter(
            name: "tether_decisions_dropped_total",
            help: "Check decisions not stored: the decision log's queue was full, or a batch could not be written")
        let queue = DecisionQueue(
            capacity: settings.queueSize, allows: settings.allows, onDrop: { dropped.increment(by: Int64($0)) })
        // On PostgreSQL every node records its answers in the database's decisions table.
        let store: any DecisionLog
        if let postgres = daemonStore as? PostgresStateStore {
            store = PostgresDecisionLog(store: postgres)
        } else {
            do {
                store = try DecisionLogStore(path: settings.path(store: configuration.store.sqlite))
            } catch {
                throw RefusedSetting(underlying: error)
            }
        }
        let dependencies = DecisionLogWriter.Dependencies(
            reportDrops: { count, since in
                try await engine.recordDecisionsDropped(count, since: since, queueSize: settings.queueSize)
            },
            beforeWrite: options.beforeDecisionWrite ?? { _ in },
            written: { written.increment(by: Int64($0)) })
        return DecisionLogWriter(
            queue: queue, store: store, retention: settings.retention, dependencies: dependencies, logger: logger)
    }

    /// SCIM's routes on `store`, whichever backend it is.
    private static func addSCIMRoutes<Store: DaemonStore>(
        to router: Router<BasicRequestContext>, store: Store, engine: Engine, configuration: SCIMControllerConfiguration, logger: Logger
    ) {
        let group = router.group().add(middleware: RevisionHeaderMiddleware(index: engine.index))
        SCIMController(store: store, engine: engine, configuration: configuration, logger: logger).addRoutes(to: group)
    }

    /// The public listener: HR hooks, the check API, health and metrics, and SCIM when it is served.
    private static func publicListener(
        configuration: Configuration, engine: Engine, store: any DaemonStore, access: APIAccess, scim: SCIMCredentials?,
        decisions: DecisionQueue, health: HealthController<BasicRequestContext>, state: DaemonState,
        listeners: ListenerReadiness, forwarding: (any WriteForwarding)?, peerAdmin: PeerAdminMiddleware<BasicRequestContext>?,
        logger: Logger
    ) -> some Service {
        let check = CheckAnswerer(
            index: engine.index, access: access, maxBodyBytes: configuration.http.maxBodyBytes, decisions: decisions,
            maxWait: configuration.check.maxWait)
        let router = buildRouter(
            engine: engine, access: access, maxBodyBytes: configuration.http.maxBodyBytes, forwarding: forwarding, check: check,
            context: BasicRequestContext.self)
        if let peerAdmin { router.add(middleware: peerAdmin) }
        health.addRoutes(to: router)
        ReviewPageController<BasicRequestContext>(
            engine: engine, maxBodyBytes: configuration.http.maxBodyBytes,
            secureCookies: configuration.reviews.publicURL?.hasPrefix("https://") ?? false
        ).addRoutes(to: router.group())
        if let scim {
            addSCIMRoutes(
                to: router, store: store, engine: engine,
                configuration: SCIMControllerConfiguration(credentials: scim, maxBodyBytes: configuration.http.maxBodyBytes),
                logger: logger)
        }
        let requestTimeout = configuration.http.requestTimeout
        let serverName = "tether"
        return Application(
            router: router,
            // A client gets http.requestTimeout to send each whole request, trickling or not;
            // idle keep-alive connections are closed after the same time. Checks are answered
            // on the connection's event loop where they can be (CheckWirePath, CheckFastPath).
            server: .http1(
                configuration: .init(idleTimeout: TimeAmount(requestTimeout)), check: check, serverName: serverName,
                requestTimeout: TimeAmount(requestTimeout)),
            configuration: .init(
                address: .hostname(configuration.http.host, port: configuration.http.port), serverName: serverName,
                availableConnectionsDelegate: MaximumAvailableConnections(configuration.http.maxConnections)),
            onServerRunning: { channel in
                await state.mark(.httpListening)
                await listeners.bound(
                    "http", address: "\(channel.localAddress.map { "\($0)" } ?? "?")", port: channel.localAddress?.port)
            },
            logger: logger)
    }

    /// The admin socket, given its group and mode as soon as it is bound.
    private static func adminListener(
        router: Router<AdminContext>, configuration: AdminConfiguration, state: DaemonState, listeners: ListenerReadiness,
        logger: Logger
    ) throws -> some Service {
        let socketPath = configuration.socket
        let socketGroup: gid_t?
        do {
            socketGroup = try configuration.group.map(AdminSocket.groupID)
        } catch {
            throw RefusedSetting(underlying: error)
        }
        try AdminSocket.preparePath(socketPath)
        return Application(
            router: router,
            configuration: .init(address: .unixDomainSocket(path: socketPath), serverName: "tether-admin"),
            onServerRunning: { _ in
                do {
                    try AdminSocket.secure(socketPath, configuration: configuration, group: socketGroup)
                } catch {
                    // A socket with the wrong owner or mode would let the wrong people in, or
                    // keep operators out: remove it and stop rather than serve.
                    unlink(socketPath)
                    logger.critical("tether cannot run: the admin socket cannot be secured", metadata: ["error": "\(error)"])
                    exit(Daemon.ExitCode.failure.rawValue)
                }
                await state.mark(.adminListening)
                await listeners.bound("admin", address: socketPath)
            },
            logger: logger)
    }
}
