import Foundation

/// What the engine needs from configuration: policy, lifecycle rules, safety and targets.
public struct EngineConfiguration: Sendable {
    public var policySet: PolicySet
    public var lifecycle: Lifecycle
    public var correlator: Correlator
    public var safety: SafetyLimits
    /// Ids of the HTTP targets that receive every change through the outbox.
    public var targets: [String]
    /// How far ahead of the clock, in seconds, a source's version may be (`sources.hr.tolerance`):
    /// a pushed event stating a later one is refused, a directory entry's is replaced by the
    /// time it was received.
    public var versionTolerance: TimeInterval
    /// The longest a grant exception may last, in seconds (`exceptions.maxDuration`).
    public var exceptionMaxDuration: TimeInterval
    /// How many sponsors that are active identities a registered agent needs
    /// (`agents.minSponsors`).
    public var minSponsors: Int
    /// The configuration file the agents it declares come from, named in the refusal to
    /// change one at runtime.
    public var configurationFile: String?
    /// How long a grant goes without an allowed check before a review recommends removing
    /// it, in seconds (`reviews.unusedAfter`, 30 days by default).
    public var reviewUnusedAfter: TimeInterval = 30 * 86_400

    public init(
        policySet: PolicySet, lifecycle: Lifecycle = Lifecycle(), correlator: Correlator = Correlator(),
        safety: SafetyLimits = SafetyLimits(), targets: [String] = [], versionTolerance: TimeInterval = 300,
        exceptionMaxDuration: TimeInterval = 90 * 86_400, minSponsors: Int = 1, configurationFile: String? = nil
    ) {
        self.minSponsors = minSponsors
        self.configurationFile = configurationFile
        self.exceptionMaxDuration = exceptionMaxDuration
        self.policySet = policySet
        self.lifecycle = lifecycle
        self.correlator = correlator
        self.safety = safety
        self.targets = targets
        self.versionTolerance = versionTolerance
    }
}

/// What became of one submitted event.
public struct EventOutcome: Sendable, Hashable {
    public enum Status: String, Sendable, Hashable {
        /// Applied now; its plan committed.
        case applied
        /// Applied to the identity, but its plan was held by the safety gates.
        case held
        /// A leaver stored to take effect at `effectiveAt`.
        case scheduled
        /// The event id was seen before; nothing changed.
        case duplicate
        /// Older than what was applied for this identity from this source; recorded, not applied.
        case stale
    }

    public var status: Status
    public var identity: IdentityID?
    public var transition: IdentityTransition?
    public var plan: Plan?

    public init(status: Status, identity: IdentityID? = nil, transition: IdentityTransition? = nil, plan: Plan? = nil) {
        self.status = status
        self.identity = identity
        self.transition = transition
        self.plan = plan
    }

    public var revoked: Int { status == .applied ? plan?.revocations ?? 0 : 0 }
    public var granted: Int { status == .applied ? plan?.grants ?? 0 : 0 }
}

/// What a reconciliation did.
public enum ReconcileOutcome: Sendable, Hashable {
    case applied(Plan)
    case held(Plan)
    /// Computed but not applied (`--dry-run`, `tether plan`).
    case planned(Plan)

    public var plan: Plan {
        switch self {
        case .applied(let plan), .held(let plan), .planned(let plan): plan
        }
    }
}

/// What an operator's approval did.
public enum ApprovalOutcome: Sendable, Hashable {
    case applied(Plan)
    /// A fresh computation gives another plan: nothing applied.
    case stale(fresh: Plan)
    case notFound
    /// The plan exists but is no longer held (approved or rejected already).
    case notHeld(PlanStatus)
    /// The identity changes held with the plan (a suspicious directory read) are older than
    /// what the store has since taken for these people (user names): applying them would undo
    /// newer facts, such as an HR leaver. Nothing applied; the next read gives a fresh plan.
    case identitiesChanged([String])
}

/// An error the engine reports to its caller: what was asked, and why it cannot be done.
public struct EngineError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Code: Sendable, Hashable {
        case unknownIdentity
        case unknownAgent
        case sponsorNotActive
        case invalidEvent
        /// The plan belongs to a downstream target: its drift check approves it, not the engine.
        case targetPlan
        /// The event states a time later than now plus the tolerance (HR `occurredAt`).
        case futureVersion
        /// The event id was received before with a different body.
        case conflictingEvent
        /// An agent's registration is not valid: its id, kind, sponsors or grants.
        case invalidAgent
        /// An agent with this id exists already (registered, or declared in configuration).
        case agentExists
        /// The agent is declared in the configuration file, which alone changes it.
        case configuredAgent
        /// Fewer sponsors than `agents.minSponsors` are active identities.
        case tooFewSponsors
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
