import TetherCore
import TetherStore

/// A system that enforces grants and is kept in step with the store through the outbox
/// (SPEC §6): it receives each change, and it can say which grants it holds.
public protocol GrantTarget: Sendable {
    /// The target's id, as configured: it names the target in the outbox, status, metrics and audit.
    var id: String { get }

    /// Sends one outbox change. Every failure is an outcome for the deliverer to schedule, not a throw.
    func deliver(_ change: OutboxEntry) async -> DeliveryOutcome

    /// Every grant the target holds now, all pages of them. Throws when they cannot be read in
    /// full: an unreadable target is unknown, not empty.
    func grants() async throws -> [Grant]

    /// Closes the target's connections; a later call opens new ones.
    func shutdown() async
}

/// What became of one attempt to send a change to a target.
public enum DeliveryOutcome: Sendable, Hashable {
    /// The target acknowledged the change: a 2xx, or a 404 for a revocation.
    case delivered(status: Int)
    /// The target failed as a whole (refused, reset, timed out, 5xx, 408, 429): send it nothing
    /// more until the retry is due.
    case unavailable(reason: String, retryAfter: Duration?)
    /// The target answered and refused this change (another status): retry it later, go on with others.
    case refused(reason: String, retryAfter: Duration?)

    /// Why the attempt failed; nil when delivered.
    public var failure: String? {
        switch self {
        case .delivered: nil
        case .unavailable(let reason, _), .refused(let reason, _): reason
        }
    }
}
