import Synchronization
import TetherCore
import TetherStore

/// What the check path knows of usage (SPEC §15): the grants allowed since the last flush,
/// with their agent and the second of their last allowed check.
///
/// A check costs one lock of one of sixteen stripes (chosen by the grant id's last hex digit,
/// so two connections rarely meet on one) and one dictionary lookup: a grant already recorded
/// in this second is not written again, and the dictionaries keep their capacity between
/// flushes, so a busy grant allocates nothing. ``UsageFlushService`` takes them in batches.
public final class UsageRecorder: Sendable {
    struct Use {
        var agent: String
        var second: Int64
    }

    final class Stripe: Sendable {
        let pending = Mutex<[String: Use]>([:])
    }

    private let stripes: [Stripe] = (0..<16).map { _ in Stripe() }
    private let clock: any WallClock

    /// - Parameter clock: the time a use is recorded at, in whole seconds.
    public init(clock: any WallClock = SystemWallClock()) {
        self.clock = clock
    }

    /// Records that a check allowed `grant` through `agent` now.
    public func record(grant: String, agent: String) {
        let second = Int64(clock.now().timeIntervalSince1970.rounded(.down))
        stripe(of: grant).pending.withLock { pending in
            if let index = pending.index(forKey: grant) {
                if pending.values[index].second < second { pending.values[index].second = second }
            } else {
                pending[grant] = Use(agent: agent, second: second)
            }
        }
    }

    /// Takes every use recorded since the last call: each stripe's table is swapped for an
    /// empty one of the same capacity, so the lock is held for the swap alone.
    public func take() -> Usage {
        var usage = Usage()
        for stripe in stripes {
            var taken = [String: Use](minimumCapacity: stripe.pending.withLock { $0.capacity })
            stripe.pending.withLock { swap(&$0, &taken) }
            Self.collect(taken, into: &usage)
        }
        return usage
    }

    /// The uses recorded since the last ``take()``, left in place: for an operator's read,
    /// which must not wait for the next flush.
    public func pending() -> Usage {
        var usage = Usage()
        for stripe in stripes {
            stripe.pending.withLock { Self.collect($0, into: &usage) }
        }
        return usage
    }

    /// Adds a stripe's uses to `usage`: each grant's second, and each agent's latest.
    private static func collect(_ table: [String: Use], into usage: inout Usage) {
        for (grant, use) in table {
            usage.grants[grant] = use.second
            usage.agents[use.agent] = max(usage.agents[use.agent] ?? use.second, use.second)
        }
    }

    /// The stripe of a grant id: its last hex digit (grant ids are `g_` and hex).
    private func stripe(of grant: String) -> Stripe {
        let last = grant.utf8.last ?? 0
        let digit = last <= UInt8(ascii: "9") ? last &- UInt8(ascii: "0") : last &- UInt8(ascii: "a") &+ 10
        return stripes[Int(digit & 15)]
    }
}
