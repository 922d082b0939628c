import Foundation
import Synchronization
import TetherCore

/// How many refused webhook requests are audited one by one.
///
/// Anyone who can reach the port can send a request that fails verification, and each
/// `event.rejected` record is a write to the store. Up to `burst` refusals are audited at
/// once, then `perSecond` on average; the others are counted (the metric and the log still
/// see every one), and the next refusal audited says how many went unaudited before it.
public final class RefusalAuditBudget: Sendable {
    /// What to do with one refusal.
    public enum Decision: Sendable, Equatable {
        /// Audit it; `unaudited` refusals since `since` were counted but not audited.
        case audit(unaudited: Int, since: Date?)
        /// Count it only.
        case skip
    }

    private struct State {
        var tokens: Double
        var last: Date?
        var unaudited = 0
        var since: Date?
    }

    /// The most refusals audited at once.
    public let burst: Int
    /// How many more may be audited per second, on average, once the burst is spent.
    public let perSecond: Double
    private let state: Mutex<State>

    /// A budget of `burst` records at once and `perSecond` after (defaults: 60, then one a second).
    public init(burst: Int = 60, perSecond: Double = 1) {
        self.burst = burst
        self.perSecond = perSecond
        state = Mutex(State(tokens: Double(burst)))
    }

    /// Takes one refusal at `now`.
    public func admit(at now: Date) -> Decision {
        state.withLock { state in
            if let last = state.last {
                let refill = max(0, now.timeIntervalSince(last)) * perSecond
                state.tokens = min(Double(burst), state.tokens + refill)
            }
            state.last = now
            guard state.tokens >= 1 else {
                if state.unaudited == 0 { state.since = now }
                state.unaudited += 1
                return .skip
            }
            state.tokens -= 1
            defer {
                state.unaudited = 0
                state.since = nil
            }
            return .audit(unaudited: state.unaudited, since: state.since)
        }
    }
}
