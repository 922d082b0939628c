import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import ServiceLifecycle
import TetherConfig
import TetherCore
import TetherEngine
import TetherHTTP
import TetherLDAP
import TetherSCIM
import TetherTargets
import TetherStore
#if canImport(Glibc)
import Glibc
#endif

/// The composition root: the only place that picks concrete types. It opens the store,
/// builds the engine and every service, and runs them in one ServiceGroup that shuts them
/// down in reverse order on SIGTERM.
public enum Daemon {
    /// Exit codes of `tether serve` (SPEC §10).
    public enum ExitCode: Int32 {
        case ok = 0
        case failure = 1
        case badConfiguration = 2
    }

    /// Runs the daemon in the foreground until SIGTERM or SIGINT.
    public static func run(configPath: String, environment: [String: String] = ProcessInfo.processInfo.environment) async -> ExitCode {
        LoggingSystem.bootstrap { KeyValueLogHandler(label: $0) }
        var logger = Logger(label: "tether")
        logger.logLevel = environment["TETHER_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info

        let loaded: LoadedConfiguration
        do {
            loaded = try ConfigurationLoader.load(path: configPath)
        } catch {
            FileHandle.standardError.write(Data("tether: configuration rejected\n\(error.description)\n".utf8))
            return .badConfiguration
        }
        for warning in loaded.warnings { logger.warning("\(warning.description)") }
        let configuration = loaded.configuration

        do {
            let notifier = SystemdNotifier(environment: environment)
            notifier.notify("STATUS=opening store")
            let store = try SQLiteStateStore(
                path: configuration.store.sqlite, syncEachCommit: configuration.store.synchronous == .full)
            let engine = Engine(store: store, configuration: configuration.engineConfiguration)
            let state = DaemonState(loaded: loaded, configPath: configPath)
            let heartbeat = Heartbeat()
            let registry = DaemonMetrics.bootstrap()
            let metrics = DaemonMetrics(registry: registry, store: store, engine: engine, state: state)
            let deliverers: [OutboxDeliveryService]
            let drift: DriftChecker
            do {
                deliverers = try OutboxDeliveryService.services(for: configuration.targets, store: store, logger: logger)
                drift = try DriftChecker(engine: engine, configurations: configuration.targets, logger: logger)
            } catch {
                FileHandle.standardError.write(Data("tether: \(error)\n".utf8))
                return .badConfiguration
            }
            let checkDrift: (@Sendable () async throws -> Void)? =
                configuration.targets.isEmpty ? nil : { @Sendable in _ = try await drift.checkAll() }
            let reconciler = ReconcilerService(
                engine: engine, state: state, heartbeat: heartbeat, logger: logger,
                fullInterval: configuration.sources.ldap?.fullScanInterval ?? .seconds(15 * 60),
                afterFullReconciliation: checkDrift)

            let listeners = ListenerReadiness(expected: 2, notifier: notifier, logger: logger)

            let credentials: (hr: HRWebhookConfiguration?, check: BearerTokens?)
            let scimTokens: [String]?
            do {
                credentials = try Secrets.access(for: configuration)
                scimTokens = try Secrets.scimTokens(for: configuration)
            } catch {
                FileHandle.standardError.write(Data("tether: \(error)\n".utf8))
                return .badConfiguration
            }
            let access = APIAccess(hr: credentials.hr, checkTokens: credentials.check)
            let scimCredentials = scimTokens.map { SCIMCredentials(tokens: $0) }
            let reloader = ConfigurationReloader(
                state: state, engine: engine, access: access, scim: scimCredentials, notifier: notifier, logger: logger)
            // Checks are answered from the index: load it before any listener opens.
            try await engine.loadIndex()
            let httpRouter = buildRouter(
                engine: engine, access: access, maxBodyBytes: configuration.http.maxBodyBytes, context: BasicRequestContext.self)
            HealthController<BasicRequestContext>(state: state, metrics: metrics).addRoutes(to: httpRouter)
            if let scimCredentials {
                SCIMController(
                    store: store, engine: engine,
                    configuration: SCIMControllerConfiguration(
                        credentials: scimCredentials, maxBodyBytes: configuration.http.maxBodyBytes),
                    logger: logger
                ).addRoutes(to: httpRouter.group())
            }
            let requestTimeout = configuration.http.requestTimeout
            let http = Application(
                router: httpRouter,
                // A client gets http.requestTimeout to send each whole request, trickling or not;
                // idle keep-alive connections are closed after the same time.
                server: .http1(configuration: .init(
                    additionalChannelHandlers: [RequestDeadlineHandler(timeout: TimeAmount(requestTimeout))],
                    idleTimeout: TimeAmount(requestTimeout))),
                configuration: .init(
                    address: .hostname(configuration.http.host, port: configuration.http.port), serverName: "tether",
                    availableConnectionsDelegate: MaximumAvailableConnections(configuration.http.maxConnections)),
                onServerRunning: { channel in
                    await state.mark(.httpListening)
                    await listeners.bound("http", address: "\(channel.localAddress.map { "\($0)" } ?? "?")")
                },
                logger: logger)

            let ldap = configuration.sources.ldap.map {
                LDAPSourceService(configuration: $0, engine: engine, store: store, logger: logger)
            }
            let adminRouter = Router(context: AdminContext.self)
            AdminController(
                engine: engine, store: store, state: state, reconciler: reconciler, reloader: reloader,
                ingest: JSONLinesIngest(engine: engine, clock: SystemWallClock()), resync: ldap,
                drift: configuration.targets.isEmpty ? nil : drift, testHooks: environment["TETHER_TEST_HOOKS"] == "1", logger: logger
            ).addRoutes(to: adminRouter)
            let socketPath = configuration.admin.socket
            let socketGroup: gid_t?
            do {
                socketGroup = try configuration.admin.group.map(AdminSocket.groupID)
            } catch {
                FileHandle.standardError.write(Data("tether: \(error)\n".utf8))
                return .badConfiguration
            }
            try AdminSocket.preparePath(socketPath)
            let adminLogger = logger
            let admin = Application(
                router: adminRouter,
                configuration: .init(address: .unixDomainSocket(path: socketPath), serverName: "tether-admin"),
                onServerRunning: { _ in
                    do {
                        try AdminSocket.secure(socketPath, configuration: configuration.admin, group: socketGroup)
                    } catch {
                        // A socket with the wrong owner or mode would let the wrong people in, or
                        // keep operators out: remove it and stop rather than serve.
                        unlink(socketPath)
                        adminLogger.critical("tether cannot run: the admin socket cannot be secured", metadata: ["error": "\(error)"])
                        exit(ExitCode.failure.rawValue)
                    }
                    await state.mark(.adminListening)
                    await listeners.bound("admin", address: socketPath)
                },
                logger: logger)

            // Started in this order, shut down in reverse: listeners stop accepting before the
            // reconcile loop ends, so the transaction in flight finishes.
            let services: [ServiceGroupConfiguration.ServiceConfiguration] = [
                .init(service: StoppingNotifier(notifier: notifier, logger: logger), successTerminationBehavior: .ignore),
                .init(service: WatchdogService(notifier: notifier, heartbeat: heartbeat, logger: logger), successTerminationBehavior: .ignore),
                .init(service: reconciler),
            ] + deliverers.map { .init(service: $0) } + (ldap.map { [.init(service: $0)] } ?? []) + [
                .init(service: ReloadSignalService(reloader: reloader, logger: logger)),
                .init(service: admin),
                .init(service: http),
            ]
            let group = ServiceGroup(
                configuration: .init(
                    services: services,
                    gracefulShutdownSignals: [.sigterm, .sigint],
                    logger: logger))
            logger.notice("tether starting", metadata: [
                "config": "\(configPath)", "store": "\(configuration.store.sqlite)",
                "synchronous": "\(configuration.store.synchronous.rawValue)", "policySet": "\(configuration.policySet.hash)",
            ])
            try await group.run()
            unlink(socketPath)
            logger.notice("tether stopped")
            return .ok
        } catch {
            logger.critical("tether cannot run", metadata: ["error": "\(error)"])
            return .failure
        }
    }
}

/// Sends `READY=1` once every listener is bound.
actor ListenerReadiness {
    let expected: Int
    let notifier: SystemdNotifier
    let logger: Logger
    private var bound: Set<String> = []

    init(expected: Int, notifier: SystemdNotifier, logger: Logger) {
        self.expected = expected
        self.notifier = notifier
        self.logger = logger
    }

    func bound(_ name: String, address: String) {
        bound.insert(name)
        logger.notice("listening", metadata: ["listener": "\(name)", "address": "\(address)"])
        if bound.count == expected {
            notifier.notify("READY=1\nSTATUS=serving")
        }
    }
}
