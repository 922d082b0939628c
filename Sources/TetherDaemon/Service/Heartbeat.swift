import Foundation
import Synchronization

/// Proof of life of the reconcile loop: it beats on every turn; the watchdog pings systemd
/// only while the last beat is recent.
public final class Heartbeat: Sendable {
    private let last = Mutex<ContinuousClock.Instant?>(nil)

    public init() {}

    public func beat() { last.withLock { $0 = .now } }

    /// Whether the loop has beaten at all since the daemon started.
    public var hasBeaten: Bool { last.withLock { $0 != nil } }

    /// How the loop is doing, seen from the watchdog.
    public enum Pulse: Sendable, Equatable {
        /// No beat yet, but the loop started less than a window ago: its first turn (the
        /// startup reconciliation) may still be running.
        case starting
        /// The loop beat within the window.
        case alive
        /// No beat within the window: the loop is stuck, or its first turn is taking too long.
        case late
    }

    /// The pulse at `now`: alive when the loop beat within `window`; before its first beat,
    /// starting until `window` has passed since `start`, late after.
    public func pulse(within window: Duration, since start: ContinuousClock.Instant, now: ContinuousClock.Instant = .now) -> Pulse {
        last.withLock { instant in
            if let instant { return instant.duration(to: now) <= window ? .alive : .late }
            return start.duration(to: now) <= window ? .starting : .late
        }
    }
}
