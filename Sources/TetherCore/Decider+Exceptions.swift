import Foundation

/// An operator's request for an exception (`tether exceptions grant|deny`).
public struct ExceptionRequest: Sendable, Hashable {
    /// When an exception ends: at a time, or after a while from when it is made (on the
    /// engine's clock).
    public enum End: Sendable, Hashable {
        case at(Date)
        case after(TimeInterval)

        func date(from now: Date) -> Date {
            switch self {
            case .at(let date): date
            case .after(let interval): now.addingTimeInterval(interval)
            }
        }
    }

    public var effect: AccessException.Effect
    public var subject: String
    public var agent: String
    public var scope: String
    public var resource: String
    public var until: End?
    public var reason: String

    public init(
        effect: AccessException.Effect, subject: String, agent: String, scope: String, resource: String, until: End?,
        reason: String
    ) {
        self.effect = effect
        self.subject = subject
        self.agent = agent
        self.scope = scope
        self.resource = resource
        self.until = until
        self.reason = reason
    }
}

/// What adding, removing or expiring an exception decided.
public enum ExceptionOutcome: Sendable {
    /// Recorded (or ended), with the plan that brought the subject's grants in line.
    case applied(AccessException, Plan)
    /// Refused, with what is wrong; nothing was recorded.
    case refused(String)
    /// No exception has that id.
    case notFound
}

/// What one exception change decided.
package typealias ExceptionDecision = Decision<ExceptionOutcome>

extension Decider {
    /// Records an exception an operator approved and applies what it changes to the subject's
    /// grants, in one commit. Never held by the safety gates: the operator is its approver.
    package func addException(
        _ request: ExceptionRequest, id: String, actor: Actor, now: Date, reads: any DecisionReads
    ) throws -> ExceptionDecision {
        let held = try reads.exceptions(subjects: [request.subject])
        if let refusal = try refusal(of: request, held: held, now: now, reads: reads) {
            return ExceptionDecision(outcome: .refused(refusal))
        }
        let exception = AccessException(
            id: id, effect: request.effect, subject: request.subject, agent: request.agent, scope: request.scope,
            resource: request.resource, until: request.until?.date(from: now), reason: request.reason,
            approver: actor.description,
            createdAt: now)
        var changeset = Changeset(time: now)
        changeset.exceptions = [exception]
        changeset.audit.append(AuditEntry(action: .exceptionAdded, actor: actor, time: now, fields: Self.fields(of: exception)))
        var exceptions = ExceptionSet(held)
        exceptions.insert(exception)
        let plan = try applyExceptions(exceptions, of: exception.subject, to: &changeset, actor: actor, reads: reads)
        return ExceptionDecision(outcome: .applied(exception, plan), changeset: changeset)
    }

    /// Ends exception `id` on an operator's word (`tether exceptions remove`), or because it
    /// reached its end (`expired`, by the scheduler): what it gave is revoked, what it kept
    /// from the subject may be given again, in the same commit.
    package func endException(_ id: String, expired: Bool, actor: Actor, now: Date, reads: any DecisionReads) throws
        -> ExceptionDecision
    {
        let all = try reads.exceptions(subjects: nil)
        guard let exception = all.first(where: { $0.id == id }) else {
            return ExceptionDecision(outcome: .notFound)
        }
        var changeset = Changeset(time: now)
        changeset.endedExceptions = [id]
        var fields = Self.fields(of: exception)
        if expired { fields["reason"] = "reached its end: \(exception.reason)" }
        changeset.audit.append(AuditEntry(
            action: expired ? .exceptionExpired : .exceptionRemoved, actor: actor, time: now, fields: fields))
        var exceptions = ExceptionSet(all.filter { $0.subject == exception.subject })
        exceptions.remove(id: id, subject: exception.subject)
        let plan = try applyExceptions(exceptions, of: exception.subject, to: &changeset, actor: actor, reads: reads)
        if expired {
            // What the exception alone gave ends with it: said as such in the chain.
            let origin = AccessException.policyPrefix + id
            for index in changeset.audit.indices
            where changeset.audit[index].action == .grantRevoked && changeset.audit[index].fields["policy"] == origin {
                changeset.audit[index].action = .grantExpired
                changeset.audit[index].fields["reason"] = "exception \(id) expired"
            }
        }
        return ExceptionDecision(outcome: .applied(exception, plan), changeset: changeset)
    }

    /// The first exception whose end has come by `now`, if any.
    package func dueException(now: Date, reads: any DecisionReads) throws -> AccessException? {
        try reads.exceptions(subjects: nil).filter { $0.until.map { $0 <= now } ?? false }
            .min { ($0.until!, $0.id) < ($1.until!, $1.id) }
    }

    /// Plans `subject`'s grants under `exceptions` and adds the plan to `changeset`, never held.
    private func applyExceptions(
        _ exceptions: ExceptionSet, of subject: String, to changeset: inout Changeset, actor: Actor,
        reads: any DecisionReads
    ) throws -> Plan {
        // An exception names a known identity when it is made, and identities are never
        // deleted: without one there is no grant to change.
        guard let identity = try reads.identity(userName: subject) else { return Plan(scope: .identity(subject), steps: []) }
        let states = try reads.agentStates()
        var (plan, _) = try scopedPlan(
            scope: .identity(identity.id), subjects: [subject], agents: [],
            view: AgentView(next: states, changed: [], transitions: [], known: agentsInForce), origin: .other, identities: [],
            exceptions: exceptions, reads: reads)
        plan.held = nil
        add(plan, agentStates: [], to: &changeset, actor: actor, event: nil)
        return plan
    }

    /// Why `request` cannot be recorded at `now`, or nil when it can.
    /// - Parameter held: the exceptions the request's subject holds now.
    private func refusal(
        of request: ExceptionRequest, held: [AccessException], now: Date, reads: any DecisionReads
    ) throws -> String? {
        for (name, value) in [
            ("subject", request.subject), ("agent", request.agent), ("scope", request.scope),
            ("resource", request.resource), ("reason", request.reason),
        ] where value.trimmingCharacters(in: .whitespaces).isEmpty {
            return "\(name) must not be empty"
        }
        if request.subject.hasPrefix("agent:") {
            return "exceptions are for people; an autonomous agent's grants are declared in the configuration"
        }
        guard try reads.identity(userName: request.subject) != nil else {
            return "no identity has userName \(request.subject)"
        }
        guard policySet.agent(request.agent) != nil else { return "agent \(request.agent) is not configured or registered" }
        let until = request.until?.date(from: now)
        if let until, until <= now {
            return "--until \(Timestamp.string(until)) is not in the future"
        }
        if request.effect == .grant {
            guard let until else {
                return "a grant exception needs --until: it is access no policy gives, and it must end"
            }
            let longest = configuration.exceptionMaxDuration
            if until.timeIntervalSince(now) > longest {
                return "--until \(Timestamp.string(until)) is further than exceptions.maxDuration "
                    + "(\(Self.days(longest))) from now; ask for a shorter exception, or renew it when it ends"
            }
        }
        let same = held.first {
            $0.effect == request.effect && $0.agent == request.agent && $0.scope == request.scope
                && $0.resource == request.resource
        }
        if let same {
            return "exception \(same.id) already \(request.effect == .grant ? "grants" : "denies") this; "
                + "remove it first to change its end or reason"
        }
        return nil
    }

    /// The audit fields that state an exception.
    static func fields(of exception: AccessException) -> [String: String] {
        var fields = [
            "exception": exception.id, "effect": exception.effect.rawValue, "subject": exception.subject,
            "agent": exception.agent, "scope": exception.scope, "resource": exception.resource,
            "reason": exception.reason, "approver": exception.approver,
        ]
        if let until = exception.until { fields["until"] = Timestamp.string(until) }
        return fields
    }

    static func days(_ interval: TimeInterval) -> String {
        let days = interval / 86_400
        return days == days.rounded() ? "\(Int(days))d" : "\(Int(interval))s"
    }
}
