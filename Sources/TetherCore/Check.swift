/// A runtime question from an agent gateway: may `subject` use `agent` with `scope` on `resource`?
public struct CheckRequest: Sendable, Hashable, Codable {
    public var subject: String
    public var agent: String
    public var scope: String
    public var resource: String
    /// The revision the answer must reflect at least (SPEC §14): a write's `revision`.
    public var atLeast: Int?

    public init(subject: String, agent: String, scope: String, resource: String, atLeast: Int? = nil) {
        self.subject = subject
        self.agent = agent
        self.scope = scope
        self.resource = resource
        self.atLeast = atLeast
    }
}

/// The answer to a ``CheckRequest``, with the reason a person can act on.
public struct CheckDecision: Sendable, Hashable {
    public var allowed: Bool
    /// The grant that allows it.
    public var grant: String?
    public var policy: String?
    public var reason: String
    /// The deny exception that refused it, if one did.
    public var exception: String?

    public init(allowed: Bool, grant: String? = nil, policy: String? = nil, reason: String, exception: String? = nil) {
        self.allowed = allowed
        self.grant = grant
        self.policy = policy
        self.reason = reason
        self.exception = exception
    }
}

/// Decides a check from the grants that exist and the liveness of subject and agent.
///
/// A grant is necessary but not sufficient: a subject that is not active, or an agent in
/// quarantine, is denied even while a revocation is still on its way.
public enum Authorization {
    /// - Parameters:
    ///   - candidates: the grants for the request's subject and agent, with their policy.
    ///   - subjectStatus: the status of the identity the subject names (nil: autonomous or unknown).
    ///   - agentQuarantined: the agent's quarantine reason, nil when it is not quarantined.
    ///   - deny: the deny exception that covers the request, if any: it beats every grant.
    ///   - agentDisabled: the agent is registered and disabled (SPEC §15).
    public static func decide(
        _ request: CheckRequest, candidates: [(grant: Grant, policy: String)],
        subjectStatus: IdentityStatus?, agentKnown: Bool, agentQuarantined: String?, deny: AccessException? = nil,
        agentDisabled: Bool = false
    ) -> CheckDecision {
        if agentDisabled { return CheckDecision(allowed: false, reason: "agent \(request.agent) is disabled") }
        guard agentKnown else {
            return CheckDecision(allowed: false, reason: "agent \(request.agent) is not configured or registered")
        }
        if let quarantine = agentQuarantined {
            return CheckDecision(allowed: false, reason: "agent \(request.agent) quarantined: \(quarantine)")
        }
        if !request.subject.hasPrefix("agent:") {
            switch subjectStatus {
            case nil: return CheckDecision(allowed: false, reason: "subject \(request.subject) is not a known identity")
            case .terminated?: return CheckDecision(allowed: false, reason: "identity \(request.subject) terminated")
            case .suspended?: return CheckDecision(allowed: false, reason: "identity \(request.subject) suspended")
            case .active?: break
            }
        }
        if let deny {
            return CheckDecision(
                allowed: false,
                reason: "denied by exception \(deny.id) (\(deny.approver)\(deny.until.map { ", until \(Timestamp.string($0))" } ?? "")): \(deny.reason)",
                exception: deny.id)
        }
        let matching = candidates.filter {
            $0.grant.subject == request.subject && $0.grant.agent == request.agent && $0.grant.scope == request.scope
                && $0.grant.covers(resource: request.resource)
        }
        // Prefer an exact resource over a prefix, then the most specific prefix.
        guard let best = matching.max(by: { specificity($0.grant) < specificity($1.grant) }) else {
            return CheckDecision(
                allowed: false,
                reason: "no grant of \(request.scope) on \(request.resource) for \(request.subject) through \(request.agent)")
        }
        return CheckDecision(allowed: true, grant: best.grant.id, policy: best.policy, reason: "granted by \(Lineage.origin(ofPolicy: best.policy))")
    }

    private static func specificity(_ grant: Grant) -> Int {
        grant.resource.hasSuffix("*") ? grant.resource.count - 1 : Int.max
    }
}
