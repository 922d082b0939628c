import Logging
import ServiceLifecycle

/// Sends `WATCHDOG=1` every half `WATCHDOG_USEC`, but only while the reconcile loop is
/// healthy: a wedged loop stops the pings and systemd restarts the daemon.
///
/// The loop's first turn is the startup reconciliation: for one watchdog window from the
/// start it counts as healthy without a beat, so a normal start pings and logs no error.
struct WatchdogService: Service {
    let notifier: SystemdNotifier
    let heartbeat: Heartbeat
    let logger: Logger

    func run() async throws {
        guard let interval = notifier.watchdogInterval else { return }
        let start = ContinuousClock.now
        var wasHealthy = true
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let pulse = heartbeat.pulse(within: interval * 2, since: start)
            let healthy = pulse != .late
            if healthy { notifier.notify("WATCHDOG=1") }
            if healthy != wasHealthy {
                if healthy {
                    logger.notice("reconcile loop healthy again; watchdog pings resume")
                } else {
                    logger.error(
                        heartbeat.hasBeaten
                            ? "reconcile loop is not beating; watchdog pings stop and systemd will restart the daemon"
                            : "startup reconciliation has not finished within the watchdog window; watchdog pings stop and systemd will restart the daemon",
                        metadata: ["window": "\(interval * 2)"])
                }
                wasHealthy = healthy
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
