import Foundation
import Synchronization

/// Proof of life of the reconcile loop: it beats on every turn; the watchdog pings systemd
/// only while the last beat is recent.
public final class Heartbeat: Sendable {
    private let last = Mutex<ContinuousClock.Instant?>(nil)

    public init() {}

    public func beat() { last.withLock { $0 = .now } }

    /// True when the loop beat within `window`.
    public func isAlive(within window: Duration) -> Bool {
        last.withLock { instant in
            guard let instant else { return false }
            return instant.duration(to: .now) <= window
        }
    }
}
