import Crypto

/// What a plan covers: the whole state, or one identity and the agents it sponsors.
public enum PlanScope: Sendable, Hashable, Codable, CustomStringConvertible {
    case full
    case identity(IdentityID)
    /// One agent's grants, after its sponsor changed.
    case agent(String)
    /// One downstream target's drift: orphans to revoke and grants to re-send (SPEC §6).
    case target(String)
    /// The changes one source made past its revocation window's budget (SPEC §6 `safety.window`).
    case window(Source)
    /// The revocations of an access review as it closes (SPEC §18).
    case campaign(String)

    public var description: String {
        switch self {
        case .full: "full"
        case .identity(let id): "identity:\(id)"
        case .agent(let id): "agent:\(id)"
        case .target(let id): "target:\(id)"
        case .window(let source): "window:\(source.rawValue)"
        case .campaign(let id): "campaign:\(id)"
        }
    }

    public init?(_ text: String) {
        if text == "full" {
            self = .full
        } else if text.hasPrefix("identity:") {
            self = .identity(String(text.dropFirst("identity:".count)))
        } else if text.hasPrefix("agent:") {
            self = .agent(String(text.dropFirst("agent:".count)))
        } else if text.hasPrefix("target:") {
            self = .target(String(text.dropFirst("target:".count)))
        } else if text.hasPrefix("window:"), let source = Source(rawValue: String(text.dropFirst("window:".count))) {
            self = .window(source)
        } else if text.hasPrefix("campaign:") {
            self = .campaign(String(text.dropFirst("campaign:".count)))
        } else {
            return nil
        }
    }
}

/// One change in a plan. Decisions are values: the store applies them, `tether plan` prints
/// them, the audit log records them and tests assert them as transcripts.
public enum PlanStep: Sendable, Hashable, Codable {
    /// Stop `agent` from holding grants because its sponsor is not active.
    case quarantine(agent: String, sponsor: String, reason: String, proposedSponsor: String?)
    /// Let `agent` hold grants again.
    case release(agent: String, sponsor: String, reason: String)
    case revoke(JustifiedGrant, reason: String)
    case grant(JustifiedGrant, reason: String)

    /// `grant`, `revoke`, `quarantine` or `release`.
    public var action: String {
        switch self {
        case .quarantine: "quarantine"
        case .release: "release"
        case .revoke: "revoke"
        case .grant: "grant"
        }
    }

    public var reason: String {
        switch self {
        case .quarantine(_, _, let reason, _), .release(_, _, let reason),
            .revoke(_, let reason), .grant(_, let reason):
            reason
        }
    }

    /// The grant a grant or revoke step is about.
    public var grant: JustifiedGrant? {
        switch self {
        case .grant(let grant, _), .revoke(let grant, _): grant
        case .quarantine, .release: nil
        }
    }

    /// The agent the step is about.
    public var agent: String {
        switch self {
        case .quarantine(let agent, _, _, _), .release(let agent, _, _): agent
        case .grant(let grant, _), .revoke(let grant, _): grant.grant.agent
        }
    }

    /// One line that identifies the change, and nothing else: the plan id is derived from these.
    var key: String {
        switch self {
        case .quarantine(let agent, let sponsor, _, _): "quarantine \(agent) \(sponsor)"
        case .release(let agent, let sponsor, _): "release \(agent) \(sponsor)"
        case .revoke(let grant, _): "revoke \(grant.grant.id)"
        case .grant(let grant, _): "grant \(grant.grant.id)"
        }
    }

    /// A one-line transcript of the step, for tests, logs and `tether plan`.
    public var transcript: String {
        switch self {
        case .quarantine(let agent, let sponsor, let reason, let proposed):
            "quarantine \(agent) sponsor=\(sponsor)" + (proposed.map { " proposed=\($0)" } ?? "") + " (\(reason))"
        case .release(let agent, let sponsor, let reason):
            "release \(agent) sponsor=\(sponsor) (\(reason))"
        case .revoke(let justified, let reason):
            "revoke \(justified.grant.subject) \(justified.grant.agent) \(justified.grant.scope) \(justified.grant.resource) (\(reason))"
        case .grant(let justified, _):
            "grant \(justified.grant.subject) \(justified.grant.agent) \(justified.grant.scope) \(justified.grant.resource) [\(justified.lineage.policy)]"
        }
    }
}

/// The ordered set of changes that turns actual into desired, with an id derived from its content.
public struct Plan: Sendable, Hashable, Codable {
    /// `p_` + the first 32 hex digits of SHA-256 over the scope and each step's identifying line.
    public let id: String
    public let scope: PlanScope
    public let steps: [PlanStep]
    /// Why the safety gates held the plan; nil when it may be applied.
    public var held: String?

    public init(scope: PlanScope, steps: [PlanStep], held: String? = nil) {
        self.scope = scope
        self.steps = steps
        self.held = held
        self.id = "p_" + String(Self.digest(scope: scope, steps: steps).prefix(32))
    }

    /// Hex SHA-256 of the scope and each step's identifying line, joined by newlines: fed
    /// line by line, as a cold start's plan has a million.
    static func digest(scope: PlanScope, steps: [PlanStep]) -> String {
        var hasher = SHA256()
        func feed(_ text: String) {
            var text = text
            text.withUTF8 { hasher.update(bufferPointer: UnsafeRawBufferPointer($0)) }
        }
        feed(scope.description)
        for step in steps {
            feed("\n")
            feed(step.key)
        }
        return Hex.encode(hasher.finalize())
    }

    /// One plan with the steps of `plans` for `scope`: each change once (the first plan to
    /// name it gives its reason), in a plan's fixed order (quarantines, revocations, releases,
    /// grants), and otherwise in the order given.
    public static func combining(_ plans: [Plan], scope: PlanScope) -> Plan {
        var seen: Set<String> = []
        var kinds: [[PlanStep]] = [[], [], [], []]
        for step in plans.lazy.flatMap(\.steps) where seen.insert(step.key).inserted {
            switch step {
            case .quarantine: kinds[0].append(step)
            case .revoke: kinds[1].append(step)
            case .release: kinds[2].append(step)
            case .grant: kinds[3].append(step)
            }
        }
        return Plan(scope: scope, steps: kinds.flatMap { $0 })
    }

    public var isEmpty: Bool { steps.isEmpty }
    public var revocations: Int { steps.count { if case .revoke = $0 { true } else { false } } }
    public var grants: Int { steps.count { if case .grant = $0 { true } else { false } } }
    public var transcript: [String] { steps.map(\.transcript) }
}
