import Foundation

/// The kind of a lifecycle event as its source states it (SPEC §3, §8).
public enum EventKind: String, Sendable, Hashable, Codable {
    case joiner, mover, leaver
}

/// One thing a source says happened to one person. Sources write these durably; the
/// engine decides what they change.
public struct LifecycleEvent: Sendable, Hashable, Codable {
    /// Unique per event; a repeated id is a duplicate.
    public var id: String
    public var source: Source
    public var kind: EventKind
    public var occurredAt: Date
    /// When a leaver takes effect; later than now means scheduled.
    public var effectiveAt: Date?
    public var facts: IdentityFacts
    /// True for an explicit per-person leaver (HR leaver, SCIM DELETE or `active:false`),
    /// which the safety gates never hold.
    public var isExplicitLeaver: Bool
    /// Hex SHA-256 of the event's canonical JSON without this field, set when the event is
    /// received (``digested()``): an id seen again with another digest is another event
    /// under a used id, not a retry. Nil in events recorded before digests were kept.
    public var digest: String?

    public init(
        id: String, source: Source, kind: EventKind, occurredAt: Date, effectiveAt: Date? = nil,
        facts: IdentityFacts, isExplicitLeaver: Bool? = nil
    ) {
        self.id = id
        self.source = source
        self.kind = kind
        self.occurredAt = occurredAt
        self.effectiveAt = effectiveAt
        self.facts = facts
        self.isExplicitLeaver = isExplicitLeaver
            ?? (source != .ldap && (kind == .leaver || facts.status == .terminated || facts.status == .suspended))
    }
}

extension LifecycleEvent {
    /// The event with ``digest`` set from its content.
    public func digested() -> LifecycleEvent {
        var bare = self
        bare.digest = nil
        var copy = self
        copy.digest = Hex.sha256(CanonicalJSON.encode(bare))
        return copy
    }
}

/// How an identity changed when an event was applied; each maps to one audit action.
public enum IdentityTransition: String, Sendable, Hashable, Codable {
    case joined, moved, suspended, terminated, reactivated, unchanged

    public var auditAction: AuditAction? {
        switch self {
        case .joined: .identityJoined
        case .moved: .identityMoved
        case .suspended: .identitySuspended
        case .terminated: .identityTerminated
        case .reactivated: .identityReactivated
        case .unchanged: nil
        }
    }
}

extension AuditEntry {
    /// The one record of an identity's transition (`identity.joined`, `identity.moved`, …),
    /// whether an event or a directory read caused it: fields `identity`, `subject` (the
    /// userName), `source`, `reason`, and `event` when an event caused it. Nil for
    /// `unchanged`, which is not audited.
    public static func identityTransition(
        _ transition: IdentityTransition, of identity: Identity, source: Source, reason: String, event: String?,
        actor: Actor, time: Date
    ) -> AuditEntry? {
        guard let action = transition.auditAction else { return nil }
        var fields = ["identity": identity.id, "subject": identity.userName, "source": source.rawValue, "reason": reason]
        if let event { fields["event"] = event }
        return AuditEntry(action: action, actor: actor, time: time, fields: fields)
    }
}

/// A lower-precedence source that still claims a person is enabled after a higher one ended
/// them: reported in `tether status`, never acted on.
public struct DirectoryLag: Sendable, Hashable, Codable {
    public var identity: IdentityID
    public var userName: String
    public var source: Source
    public var statusSource: Source
    public var status: IdentityStatus

    public init(identity: IdentityID, userName: String, source: Source, statusSource: Source, status: IdentityStatus) {
        self.identity = identity
        self.userName = userName
        self.source = source
        self.statusSource = statusSource
        self.status = status
    }
}

/// What the lifecycle decided for one event.
public enum LifecycleDecision: Sendable, Hashable {
    /// Older than the last event applied from the same source for the same identity.
    case stale(identity: IdentityID, lastVersion: String)
    /// The identity after the event, how it changed, and any directory lag observed.
    case apply(Identity, transition: IdentityTransition, lag: DirectoryLag?)
}
