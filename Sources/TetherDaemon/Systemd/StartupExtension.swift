import Dispatch

/// Asks systemd for more time to start while long start-up work runs (an upgrade of a large
/// store): `EXTEND_TIMEOUT_USEC` at once and then every 20 s, each asking for a minute more,
/// so a unit's start timeout (90 s by default) cannot kill the daemon half way and start the
/// same work again. The work blocks its thread, so the messages come from a timer of their own.
final class StartupExtension {
    private let timer: any DispatchSourceTimer

    /// Starts asking; ``stop()`` ends it.
    init(notifier: SystemdNotifier) {
        notifier.notify(Self.message)
        timer = DispatchSource.makeTimerSource(queue: .global())
        timer.schedule(deadline: .now() + .seconds(20), repeating: .seconds(20))
        timer.setEventHandler { notifier.notify(Self.message) }
        timer.resume()
    }

    func stop() { timer.cancel() }

    private static let message = "EXTEND_TIMEOUT_USEC=60000000"
}
