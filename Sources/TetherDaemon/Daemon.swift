import Foundation
import Logging
import TetherConfig
import TetherStore

/// The composition root, with ``DaemonServices``: the only place that picks concrete types.
/// `run` reads the configuration and credentials, opens the store, builds the services and
/// runs them until SIGTERM, and maps what goes wrong to the exit codes of SPEC §10.
public enum Daemon {
    /// Exit codes of `tether serve` (SPEC §10).
    public enum ExitCode: Int32 {
        case ok = 0
        case failure = 1
        case badConfiguration = 2
    }

    /// Runs the daemon in the foreground until SIGTERM or SIGINT.
    public static func run(configPath: String, environment: [String: String] = ProcessInfo.processInfo.environment) async -> ExitCode {
        MemoryArenas.limit(environment: environment)
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

        let credentials: ListenerCredentials
        let postgres: PostgresSettings?
        do {
            credentials = try ListenerCredentials(for: configuration)
            postgres = try configuration.store.postgres.map(StoreOpener.settings)
            // The checkpoint signing key, like the secrets, is checked before the store is opened.
            _ = try configuration.audit.signingKey(file: loaded.file)
        } catch {
            return refuse(error)
        }
        do {
            let notifier = SystemdNotifier(environment: environment)
            notifier.notify("STATUS=opening store")
            var extension_: StartupExtension?
            let store = try await StoreOpener.open(configuration.store, postgres: postgres, logger: logger) { steps in
                logger.notice(
                    "tether is upgrading its store to this version's schema; it answers once the upgrade is done, which takes minutes for millions of records",
                    metadata: ["store": "\(configuration.store.sqlite)", "steps": "\(steps.joined(separator: "; "))"])
                notifier.notify("STATUS=upgrading the store")
                extension_ = StartupExtension(notifier: notifier)
            }
            extension_?.stop()
            let services = try await DaemonServices.build(
                loaded: loaded, configPath: configPath, credentials: credentials, store: store,
                registry: DaemonMetrics.bootstrap(), notifier: notifier, logger: logger,
                options: .init(
                    handlesSignals: true, testHooks: environment["TETHER_TEST_HOOKS"] == "1",
                    holdReadAtPage: environment["TETHER_TEST_HOLD_READ_AT_PAGE"].flatMap { Int($0) }))
            logger.notice("\(BuildInfo.current) starting", metadata: [
                "version": "\(BuildInfo.current.version)", "commit": "\(BuildInfo.current.commitLabel)", "config": "\(configPath)", "store": "\(store.location)",
                "synchronous": "\(configuration.store.postgres == nil ? configuration.store.synchronous.rawValue : "the server's")", "policySet": "\(configuration.policySet.hash)",
            ])
            if let priority = configuration.http.realtimePriority {
                await RealtimeEventLoops.raise(priority: Int32(priority), logger: logger)
            }
            try await services.run()
            await store.close()
            logger.notice("tether stopped")
            return .ok
        } catch let refused as DaemonServices.RefusedSetting {
            return refuse(refused.underlying)
        } catch {
            logger.critical("tether cannot run", metadata: ["error": "\(error)"])
            return .failure
        }
    }

    /// A setting or credential the daemon cannot start with: said on stderr, exit 2.
    private static func refuse(_ error: any Error) -> ExitCode {
        FileHandle.standardError.write(Data("tether: \(error)\n".utf8))
        return .badConfiguration
    }
}
