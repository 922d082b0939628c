import Logging
import ServiceLifecycle
import TetherCore
import UnixSignals

/// Reloads the configuration on SIGHUP, as systemd's `ExecReload=kill -HUP $MAINPID` asks.
struct ReloadSignalService: Service {
    let reloader: ConfigurationReloader
    let logger: Logger

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            logger.notice("SIGHUP received; reloading configuration")
            _ = await reloader.reload(actor: .operator("signal"))
        }
    }
}

/// Tells systemd `STOPPING=1` as soon as a graceful shutdown begins. A group tells its services
/// of the shutdown last to first, so this one is listed last.
struct StoppingNotifier: Service {
    let notifier: SystemdNotifier
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        logger.notice("shutting down: no new requests; finishing the one in flight")
        notifier.notify("STOPPING=1\nSTATUS=stopping")
    }
}
