import Foundation

/// A grant as stored: the grant, its lineage, and when and by which audit record it came.
public struct StoredGrant: Sendable, Hashable, Codable {
    public var justified: JustifiedGrant
    public var grantedAt: Date
    /// The seq of the `grant.granted` audit record.
    public var auditSeq: Int?

    public init(justified: JustifiedGrant, grantedAt: Date, auditSeq: Int?) {
        self.justified = justified
        self.grantedAt = grantedAt
        self.auditSeq = auditSeq
    }

    public var grant: Grant { justified.grant }
    public var id: String { justified.grant.id }
}

/// What became of an event in the inbox.
public enum EventStatus: String, Sendable, Hashable, Codable {
    case applied, stale, scheduled, rejected
}

/// An inbox row: the event as received and what became of it.
public struct EventRecord: Sendable, Hashable {
    public var event: LifecycleEvent
    public var status: EventStatus
    public var identity: IdentityID?
    public var receivedAt: Date

    public init(event: LifecycleEvent, status: EventStatus, identity: IdentityID?, receivedAt: Date) {
        self.event = event
        self.status = status
        self.identity = identity
        self.receivedAt = receivedAt
    }
}

/// The life of a plan that was held.
public enum PlanStatus: String, Sendable, Hashable, Codable {
    case held, approved, rejected
}

/// A plan the safety gates held, and what became of it.
public struct RecordedPlan: Sendable, Hashable {
    public var plan: Plan
    public var status: PlanStatus
    public var createdAt: Date
    public var resolvedBy: String?
    /// Identity changes applied together with the plan when it is approved.
    public var pendingIdentities: [Identity]

    public init(plan: Plan, status: PlanStatus, createdAt: Date, resolvedBy: String? = nil, pendingIdentities: [Identity] = []) {
        self.plan = plan
        self.status = status
        self.createdAt = createdAt
        self.resolvedBy = resolvedBy
        self.pendingIdentities = pendingIdentities
    }
}

/// A change a drift check found a target needs, with the audit record that states it.
public struct TargetRepair: Sendable, Hashable {
    /// What the repair does.
    public enum Kind: String, Sendable, Hashable, Codable {
        /// The store holds the grant and the target does not: send it again (`put`).
        case resend
        /// The target holds a grant the store does not: revoke it there (`delete`).
        case revokeOrphan
        /// The target holds a grant the store does not: only record it.
        case reportOrphan
    }

    /// The target's id.
    public var target: String
    /// The grant sent, revoked or reported.
    public var grant: Grant
    /// What the repair does.
    public var kind: Kind
    /// Written to the audit chain when the repair is applied.
    public var audit: AuditEntry

    /// A repair of `grant` on `target`.
    public init(target: String, grant: Grant, kind: Kind, audit: AuditEntry) {
        self.target = target
        self.grant = grant
        self.kind = kind
        self.audit = audit
    }
}

/// Everything one decision changes, committed together or not at all.
public struct Changeset: Sendable {
    /// The inbox row for the event that caused the change.
    public var event: EventRecord?
    /// Marks a scheduled leaver as done (its id).
    public var completedScheduledLeaver: String?
    /// Identities to insert or replace, with their source links.
    public var identities: [Identity] = []
    /// Directory lag observed (upserted) and identities whose lag ended.
    public var lags: [DirectoryLag] = []
    public var clearedLags: [IdentityID] = []
    public var agentStates: [AgentState] = []
    /// Grant and revoke steps to apply (quarantine and release steps become agent states).
    public var steps: [PlanStep] = []
    /// A plan to record as held. A plan with the same id that was approved or rejected before
    /// is held again: the same situation came back and waits for an operator once more.
    public var heldPlan: Plan?
    /// Identity changes that wait with a held plan (a suspicious directory read).
    public var pendingIdentities: [Identity] = []
    public var planResolution: (id: String, status: PlanStatus, by: String)?
    /// Held plans this changeset's fresh computation makes obsolete; see ``Supersession``.
    public var supersedes: Supersession?
    /// Audit entries, sealed into the chain in this order.
    public var audit: [AuditEntry] = []
    /// HTTP targets that receive each grant and revoke step through the outbox.
    public var targets: [String] = []
    /// A source's new state (health, cookie); a cookie commits with the changes it covers.
    public var sourceState: SourceState?
    /// The revocation windows of the sources whose revocations this changeset commits, as
    /// they stand after it (SPEC §6 `safety.window`): they commit with the revocations they count.
    public var windows: [Source: RevocationWindow] = [:]
    /// Exceptions to record (SPEC §17).
    public var exceptions: [AccessException] = []
    /// Exceptions that end (removed or expired), by id.
    public var endedExceptions: [String] = []
    /// Agents registered or changed at runtime (SPEC §15), stored whole.
    public var registeredAgents: [Agent] = []
    /// Registered agents deleted, with their recorded states.
    public var deletedAgents: [String] = []
    /// Access review campaigns to insert or replace (SPEC §18).
    public var reviewCampaigns: [ReviewCampaign] = []
    /// Review items to insert or replace.
    public var reviewItems: [ReviewItem] = []
    public var time: Date

    public init(time: Date) { self.time = time }

    public var isEmpty: Bool {
        event == nil && completedScheduledLeaver == nil && identities.isEmpty && lags.isEmpty
            && clearedLags.isEmpty && agentStates.isEmpty && steps.isEmpty && heldPlan == nil
            && planResolution == nil && supersedes == nil && audit.isEmpty && sourceState == nil && windows.isEmpty
            && exceptions.isEmpty && endedExceptions.isEmpty && registeredAgents.isEmpty && deletedAgents.isEmpty
            && reviewCampaigns.isEmpty && reviewItems.isEmpty
    }
}

/// A fresh computation for a scope makes the plans held earlier for that scope obsolete:
/// whether it applies, finds nothing to do or is held again with other steps, approving an
/// older one would be refused as stale. The commit resolves each as `rejected`, with a
/// `plan.rejected` record by `actor` that says so, so that `tether plans`, `tether status` and
/// the held-plans gauge show only what an operator can still approve.
///
/// A plan held over a suspicious source read (it carries the read's identity changes) is only
/// made obsolete by a later read (`includingHeldReads`): a timer's reconciliation computes
/// without those changes and says nothing about them.
public struct Supersession: Sendable, Hashable {
    public var scope: PlanScope
    public var actor: Actor
    /// Also plans held over a source read.
    public var includingHeldReads: Bool
    /// The plan the fresh computation holds itself, if it is held: it stays.
    public var keeping: String?

    public init(scope: PlanScope, actor: Actor, includingHeldReads: Bool = false, keeping: String? = nil) {
        self.scope = scope
        self.actor = actor
        self.includingHeldReads = includingHeldReads
        self.keeping = keeping
    }

    /// Whether committing this supersession resolves `recorded`: a plan still held for the
    /// same scope, not the one kept, and not held over a source read unless those are included.
    public func resolves(_ recorded: RecordedPlan) -> Bool {
        recorded.status == .held && recorded.plan.scope == scope && recorded.plan.id != keeping
            && (includingHeldReads || recorded.pendingIdentities.isEmpty)
    }
}

/// A source's health and resume point, as `tether status` shows it.
public struct SourceState: Sendable, Hashable, Codable {
    public enum Health: String, Sendable, Hashable, Codable { case ok, degraded, disabled }
    public var source: Source
    public var health: Health
    /// How changes are detected (`syncrepl`, `poll`, `push`).
    public var mode: String?
    public var lastSuccess: Date?
    public var lastError: String?
    /// The last full scan's user count.
    public var lastScanUsers: Int?
    /// Entries in the source that cannot be read or mapped (no externalId, text that is
    /// not UTF-8); the people they were keep their state. Nil when never counted.
    public var unreadableEntries: Int?
    /// An opaque resume point (an RFC 4533 cookie, a high-water mark).
    public var cookie: Data?

    public init(
        source: Source, health: Health, mode: String? = nil, lastSuccess: Date? = nil, lastError: String? = nil,
        lastScanUsers: Int? = nil, unreadableEntries: Int? = nil, cookie: Data? = nil
    ) {
        self.source = source
        self.health = health
        self.mode = mode
        self.lastSuccess = lastSuccess
        self.lastError = lastError
        self.lastScanUsers = lastScanUsers
        self.unreadableEntries = unreadableEntries
        self.cookie = cookie
    }
}
