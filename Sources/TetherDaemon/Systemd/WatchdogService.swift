import Logging
import ServiceLifecycle

/// Sends `WATCHDOG=1` every half `WATCHDOG_USEC`, but only while the reconcile loop is
/// healthy: a wedged loop stops the pings and systemd restarts the daemon.
struct WatchdogService: Service {
    let notifier: SystemdNotifier
    let heartbeat: Heartbeat
    let logger: Logger

    func run() async throws {
        guard let interval = notifier.watchdogInterval else { return }
        var wasAlive = true
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let alive = heartbeat.isAlive(within: interval * 2)
            if alive { notifier.notify("WATCHDOG=1") }
            if alive != wasAlive {
                if alive {
                    logger.notice("reconcile loop healthy again; watchdog pings resume")
                } else {
                    logger.error("reconcile loop is not beating; watchdog pings stop")
                }
                wasAlive = alive
            }
            try await gracefulShutdownAwareSleep(interval)
        }
    }
}

/// Sleeps, returning early (without error) when a graceful shutdown begins.
func gracefulShutdownAwareSleep(_ duration: Duration) async throws {
    do {
        try await cancelWhenGracefulShutdown {
            try await Task.sleep(for: duration)
        }
    } catch is CancellationError where Task.isShuttingDownGracefully {
        return
    }
}
