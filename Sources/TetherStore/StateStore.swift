import Foundation
import ServiceLifecycle
import TetherCore

/// Durable state: identities, grants with lineage, agents, the event inbox, scheduled
/// leavers, held plans, the audit chain and the target outbox; one backend (SQLite) today.
///
/// A backend implements a few roles, each a narrow protocol: ``StateReading`` (what
/// deciding and reporting read), ``ChangesetCommitting`` (the engine's one write),
/// ``AuditReading``, ``OutboxQueue`` and ``SCIMResourceReading``. Only the
/// engine holds a whole store: every other part of Tether gets the role it needs. Every
/// write is one ``Changeset`` committed in one transaction: all of it or none of it. One
/// conformance suite runs against every backend.
public protocol StateStore: StateReading, ChangesetCommitting, AuditReading, OutboxQueue, SCIMResourceReading {}

/// What deciding and reporting read; nothing here writes.
public protocol StateReading: Sendable {
    /// Runs `body` in one read transaction: every read it makes sees the same state. What the
    /// engine decides a change from (inspect → decide → commit).
    func inspect<T: Sendable>(_ body: @escaping @Sendable (any DecisionReads) throws -> T) async throws -> T

    func identityCounts() async throws -> [IdentityStatus: Int]
    /// Folds every identity into `initial`, one at a time, in the order of ``identities(status:)``
    /// with no status: the caller never holds them all.
    func reduceIdentities<Result: Sendable>(
        into initial: Result, _ update: @escaping @Sendable (inout Result, Identity) throws -> Void
    ) async throws -> Result
    func directoryLags() async throws -> [DirectoryLag]
    /// How many identities are active, and every group one of them is a member of: what the
    /// warning about policies naming unknown groups compares with. Read without decoding
    /// identities, as a daemon's start does it beside its first checks.
    func activeGroups() async throws -> (activeIdentities: Int, groups: Set<String>)

    func grants(subject: String?, agent: String?) async throws -> [StoredGrant]
    func grant(id: String) async throws -> StoredGrant?
    /// Folds every grant and its policy into `initial`, without decoding lineage: what the
    /// check index is loaded from.
    func reduceGrantPolicies<Result: Sendable>(
        into initial: Result, _ update: @escaping @Sendable (inout Result, Grant, String) -> Void
    ) async throws -> Result

    /// Scheduled leavers not yet applied, earliest first; `due` limits them to those due by then.
    func scheduledLeavers(dueBy due: Date?) async throws -> [LifecycleEvent]
    /// How many plans have `status`, counted without reading them: what `/metrics` shows.
    func planCount(status: PlanStatus) async throws -> Int
    func plans(status: PlanStatus?) async throws -> [RecordedPlan]

    /// What a drift check compares `target` with, read in one snapshot.
    func targetBaseline(target: String) async throws -> TargetBaseline

    func sourceStates() async throws -> [Source: SourceState]

    /// The exceptions in force, in the order they were made (SPEC §17).
    func exceptions() async throws -> [AccessException]

    /// How many items a review campaign has, how many a reviewer decided, and how many have
    /// no reviewer: counted without reading the items, for `tether reviews`.
    func reviewCounts(campaign: String) async throws -> ReviewCounts
}

/// A review campaign's items, counted.
public struct ReviewCounts: Sendable, Hashable {
    public var items: Int
    public var decided: Int
    public var unassigned: Int

    public init(items: Int, decided: Int, unassigned: Int) {
        self.items = items
        self.decided = decided
        self.unassigned = unassigned
    }
}

/// The engine's writes: a decided changeset, SCIM resources with the changesets they
/// cause, and a drift check's repairs.
public protocol ChangesetCommitting: Sendable {
    /// Commits `changeset` atomically and returns what the commit sealed.
    @discardableResult
    func commit(_ changeset: Changeset) async throws -> CommitReceipt

    /// Commits `write` together with `changesets` (the lifecycle effect of the write) in one
    /// transaction: all of it or none of it. Returns the audit seqs the transaction sealed.
    ///
    /// Throws ``StoreError`` with code `.write`; its `underlying` is a ``SCIMWriteConflict``
    /// when a resource changed since it was read or a userName is taken.
    @discardableResult
    func commit(_ write: SCIMWrite, with changesets: [Changeset]) async throws -> CommitReceipt

    /// Commits what a drift check decided, in one transaction, after the `audit` entries (an
    /// approval, with `resolution` marking the approved held plan; `supersedes` resolving the
    /// target's older held drift). Each repair is applied only if it still holds: its grant has
    /// no audit record after `auditSeq` (it did not change during the check) and no change
    /// waiting in the target's outbox; a re-send only while the store holds the grant, an
    /// orphan only while it does not; an orphan already reported since its grant last changed
    /// is not reported again. Returns the repairs applied.
    func commitTargetRepairs(
        _ repairs: [TargetRepair], audit: [AuditEntry], resolution: (id: String, status: PlanStatus, by: String)?,
        supersedes: Supersession?, unchangedAfter auditSeq: Int, time: Date
    ) async throws -> [TargetRepair]
}

/// The audit chain, read and verified.
public protocol AuditReading: Sendable {
    func auditRecords(_ query: AuditQuery) async throws -> [AuditRecord]
    /// Recomputes the whole chain from the first record.
    func verifyAuditChain() async throws -> ChainVerification
    /// The seq of the newest audit record; 0 for an empty log.
    func lastAuditSeq() async throws -> Int
}

/// The target outbox as its deliverers see it: the rows due, and their delivery recorded.
public protocol OutboxQueue: Sendable {
    func outbox(target: String?) async throws -> [OutboxEntry]
    /// How many changes wait for `target` and when the oldest was committed, counted without
    /// loading the rows: what `tether status` and `/metrics` show.
    func outboxBacklog(target: String) async throws -> OutboxBacklog
    /// The changes for `target` due by `now`, at most `limit`, in delivery order: revocations
    /// oldest first, then grants older than every pending revocation (due or not), oldest first.
    func pendingOutbox(target: String, dueBy now: Date, limit: Int) async throws -> [OutboxEntry]
    /// The earliest retry scheduled after `now` for a row of `target`, if any.
    func nextOutboxAttempt(target: String, after now: Date) async throws -> Date?
    /// Removes the grant rows for `target` that a later revocation of the same grant makes moot,
    /// so a grant revoked since is never sent; returns their ids.
    func dropSupersededOutbox(target: String) async throws -> [Int64]
    /// Removes delivered rows: the target acknowledged them.
    func markDelivered(ids: [Int64]) async throws
    /// Records a failed attempt made at `time`: one more attempt, the error, and when to try again.
    func markFailed(id: Int64, error: String, at time: Date, nextAttemptAt: Date) async throws
    /// Yields after each commit that added outbox rows, so deliverers wake at once. Each call
    /// makes a new stream; several commits may yield once.
    func outboxInsertions() -> AsyncStream<Void>
}

/// A change waiting to be delivered to an HTTP target.
public struct OutboxEntry: Sendable, Hashable {
    public enum Operation: String, Sendable, Hashable, Codable { case put, delete }
    public var id: Int64
    public var target: String
    public var grantID: String
    public var operation: Operation
    public var grant: Grant
    public var createdAt: Date
    public var attempts: Int
    /// When the next attempt is due after a failure; nil when never tried.
    public var nextAttemptAt: Date?
    /// Why the last attempt failed.
    public var lastError: String?

    public init(
        id: Int64, target: String, grantID: String, operation: Operation, grant: Grant, createdAt: Date, attempts: Int,
        nextAttemptAt: Date? = nil, lastError: String? = nil
    ) {
        self.id = id
        self.target = target
        self.grantID = grantID
        self.operation = operation
        self.grant = grant
        self.createdAt = createdAt
        self.attempts = attempts
        self.nextAttemptAt = nextAttemptAt
        self.lastError = lastError
    }
}

/// The changes waiting for one target, counted.
public struct OutboxBacklog: Sendable, Hashable {
    /// The number of rows waiting.
    public var pending: Int
    /// When the oldest waiting row (the first in ``OutboxQueue/outbox(target:)``) was committed.
    public var oldestCreatedAt: Date?
    /// Why the latest failed attempt of a waiting row failed; nil when none has failed.
    public var lastError: String?

    public init(pending: Int, oldestCreatedAt: Date?, lastError: String? = nil) {
        self.pending = pending
        self.oldestCreatedAt = oldestCreatedAt
        self.lastError = lastError
    }
}

/// The store's side of a drift check for one target.
public struct TargetBaseline: Sendable, Hashable {
    /// The grants the store holds, by grant id.
    public var grants: [String: Grant]
    /// The policy that derives each grant, by grant id.
    public var policies: [String: String]
    /// Grants with a change waiting in the target's outbox: the target may lag on them.
    public var waiting: Set<String>
    /// The seq of the last audit record when the baseline was read.
    public var auditSeq: Int

    /// A baseline as read.
    public init(grants: [String: Grant], policies: [String: String], waiting: Set<String>, auditSeq: Int) {
        self.grants = grants
        self.policies = policies
        self.waiting = waiting
        self.auditSeq = auditSeq
    }
}

/// Filters for reading the audit log.
public struct AuditQuery: Sendable, Hashable {
    public var subject: String?
    public var agent: String?
    public var grant: String?
    public var since: Date?
    public var afterSeq: Int?
    public var limit: Int?

    public init(subject: String? = nil, agent: String? = nil, grant: String? = nil, since: Date? = nil, afterSeq: Int? = nil, limit: Int? = nil) {
        self.subject = subject
        self.agent = agent
        self.grant = grant
        self.since = since
        self.afterSeq = afterSeq
        self.limit = limit
    }
}

/// What a commit sealed.
public struct CommitReceipt: Sendable, Hashable {
    /// The seq of the first and last audit record written, if any.
    public var auditSeqs: ClosedRange<Int>?

    public init(auditSeqs: ClosedRange<Int>?) { self.auditSeqs = auditSeqs }
}

/// An error from the store: what failed, and the underlying error.
public struct StoreError: Error, CustomStringConvertible, Sendable {
    public enum Code: Sendable, Hashable {
        /// The database could not be opened or migrated.
        case open
        /// A write could not be committed (disk full, locked, constraint); nothing was applied.
        case write
        /// A read failed.
        case read
        /// A stored value could not be decoded.
        case corrupt
    }

    public var code: Code
    public var message: String
    public var underlying: (any Error)?

    public init(_ code: Code, _ message: String, underlying: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
    }

    public var description: String {
        underlying.map { "\(message): \($0)" } ?? message
    }
}

/// Single reads, each in a read transaction of its own: for callers that read one thing
/// (operators' commands, status, sources). A decision reads through ``StateReading/inspect(_:)``.
extension StateReading {
    public func identitySummaries() async throws -> [IdentitySummary] { try await inspect { try $0.identitySummaries() } }

    public func grantKeys() async throws -> GrantKeyTable { try await inspect { try $0.grantKeys() } }

    public func grants(ids: [String]) async throws -> [StoredGrant] { try await inspect { try $0.grants(ids: ids) } }

    public func identity(id: IdentityID) async throws -> Identity? { try await inspect { try $0.identity(id: id) } }

    public func identity(userName: String) async throws -> Identity? {
        try await inspect { try $0.identity(userName: userName) }
    }

    public func identity(source: Source, externalId: String) async throws -> Identity? {
        try await inspect { try $0.identity(source: source, externalId: externalId) }
    }

    public func correlationCandidates(for facts: IdentityFacts, from source: Source) async throws -> [Identity] {
        try await inspect { try $0.correlationCandidates(for: facts, from: source) }
    }

    public func identities(status: IdentityStatus?) async throws -> [Identity] {
        try await inspect { try $0.identities(status: status) }
    }

    public func grants(subjects: Set<String>, agents: Set<String>) async throws -> [StoredGrant] {
        try await inspect { try $0.grants(subjects: subjects, agents: agents) }
    }

    public func grantCount() async throws -> Int { try await inspect { try $0.grantCount() } }

    public func agentStates() async throws -> [String: AgentState] { try await inspect { try $0.agentStates() } }

    /// The agents registered at runtime, disabled ones included, in the order registered.
    public func registeredAgents() async throws -> [Agent] { try await inspect { try $0.registeredAgents() } }

    public func eventStatus(id: String) async throws -> EventStatus? { try await inspect { try $0.eventStatus(id: id) } }

    public func event(id: String) async throws -> LifecycleEvent? { try await inspect { try $0.event(id: id) } }

    public func heldPlans(scope: PlanScope) async throws -> [RecordedPlan] {
        try await inspect { try $0.heldPlans(scope: scope) }
    }

    public func plan(id: String) async throws -> RecordedPlan? { try await inspect { try $0.plan(id: id) } }

    public func revocationWindow(_ source: Source) async throws -> RevocationWindow? {
        try await inspect { try $0.revocationWindow(source) }
    }

    public func sourceState(_ source: Source) async throws -> SourceState? {
        try await inspect { try $0.sourceState(source) }
    }

    public func reviewCampaign(id: String) async throws -> ReviewCampaign? { try await inspect { try $0.reviewCampaign(id: id) } }

    public func reviewCampaigns() async throws -> [ReviewCampaign] { try await inspect { try $0.reviewCampaigns() } }

    public func reviewItems(campaign: String, reviewer: String? = nil) async throws -> [ReviewItem] {
        try await inspect { try $0.reviewItems(campaign: campaign, reviewer: reviewer) }
    }
}

/// A whole backend as the daemon runs it: every role, the services it runs beside the
/// daemon, and its close.
public protocol DaemonStore: StateStore, UsageStore, AuditCheckpointStore {
    /// Services the backend runs while the daemon does, started before the writers and stopped
    /// after them (SQLite's log checkpointer).
    var services: [any Service] { get }
    /// Where the store is, as logs name it: a file, or a database URL without its password.
    var location: String { get }
    /// Releases connections and threads; nothing is read or written after it.
    func close() async
}
