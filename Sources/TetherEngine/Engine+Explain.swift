import Foundation
import TetherCore
import TetherStore

/// Whether a request is allowed and everything that justifies the answer.
public struct Explanation: Sendable {
    public var request: CheckRequest
    public var decision: CheckDecision
    /// The grant that allows it, with its lineage.
    public var grant: StoredGrant?
    /// The identity the subject names, if any.
    public var identity: Identity?
    public var agentState: AgentState?
    /// The audit records about the matching grant, oldest first.
    public var audit: [AuditRecord]
    /// The exception that decides the answer: the deny that refuses it, or the grant
    /// exception that gave the grant allowing it.
    public var exception: AccessException?
}

extension Engine {
    /// Answers a check from the store alone, with lineage: policy, facts, events, audit seq.
    public func explain(_ request: CheckRequest) async throws -> Explanation {
        let identity = request.subject.hasPrefix("agent:") ? nil : try await store.identity(userName: request.subject)
        let states = try await store.agentStates()
        let exceptions = ExceptionSet(try await store.exceptions().filter { $0.subject == request.subject })
        let deny = exceptions.deny(request)
        let candidates = try await store.grants(subject: request.subject, agent: request.agent)
            .filter { $0.grant.scope == request.scope }
        let decision = Authorization.decide(
            request, candidates: candidates.map { ($0.grant, $0.justified.lineage.policy) },
            subjectStatus: identity?.status, agentKnown: policySet.agent(request.agent) != nil,
            agentQuarantined: states[request.agent].flatMap { $0.quarantined ? ($0.reason ?? "sponsor not active") : nil },
            deny: deny, agentDisabled: disabledAgents.contains(request.agent))
        let grantID = decision.grant ?? candidates.first { $0.grant.covers(resource: request.resource) }?.id
        let grant = candidates.first { $0.id == grantID }
        var audit: [AuditRecord] = []
        if let grantID { audit = try await store.auditRecords(AuditQuery(grant: grantID)) }
        let given = (grant?.justified.lineage.policy).flatMap(AccessException.id(fromPolicy:)).flatMap { id in
            exceptions.grants[request.subject]?.first { $0.id == id }
        }
        return Explanation(
            request: request, decision: decision, grant: grant, identity: identity,
            agentState: states[request.agent], audit: audit,
            exception: decision.exception == nil ? (decision.allowed ? given : nil) : deny)
    }
}
