import Foundation
import TetherCore

/// Which recorded decisions to read (`tether decisions`).
public struct DecisionQuery: Sendable, Hashable {
    public var subject: String?
    public var agent: String?
    /// At or after this time.
    public var since: Date?
    /// Before this time.
    public var until: Date?
    /// Only denies.
    public var deniedOnly: Bool
    /// At most this many, oldest first.
    public var limit: Int?

    public init(
        subject: String? = nil, agent: String? = nil, since: Date? = nil, until: Date? = nil, deniedOnly: Bool = false,
        limit: Int? = nil
    ) {
        self.subject = subject
        self.agent = agent
        self.since = since
        self.until = until
        self.deniedOnly = deniedOnly
        self.limit = limit
    }
}

/// Where the answers to `/v1/check` are recorded (SPEC §16): a SQLite file of its own
/// (``DecisionLogStore``), or a table of the PostgreSQL store (``PostgresDecisionLog``).
public protocol DecisionLog: Sendable {
    /// Where the log is, as logs name it: a file, or a database URL without its password.
    var location: String { get }
    /// Stores `decisions` at once: all of them or none. With `behind`, the writer is behind
    /// and the batch goes at a higher priority where the backend has one.
    func write(_ decisions: [DecisionRecord], behind: Bool) async throws
    /// Deletes at most `limit` decisions older than `cutoff`, oldest first; returns how many.
    /// Call again while it returns `limit`.
    func deleteDecisions(before cutoff: Date, limit: Int) async throws -> Int
    /// The decisions `query` selects, oldest first.
    func decisions(_ query: DecisionQuery) async throws -> [DecisionRecord]
    /// The decision with id `id`; nil when the log holds none or `id` is not a decision id.
    func decision(id: String) async throws -> DecisionRecord?
    /// How many decisions the log holds.
    func count() async throws -> Int
    /// The bytes the log takes on disk, indexes included.
    func bytesUsed() async throws -> Int
}

extension DecisionLog {
    /// Stores `decisions` at once, at the writer's usual priority.
    public func write(_ decisions: [DecisionRecord]) async throws {
        try await write(decisions, behind: false)
    }
}
