import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import TetherCore
import TetherEngine

/// Answers `POST /v1/check` questions (SPEC §7): may this subject use this agent with this
/// scope on this resource? Answered from the engine's in-memory ``CheckIndex``: no store read
/// and no hop onto the engine actor, so it stays fast and reflects every committed revocation.
/// Each answer is handed to the decision log's queue, which never makes the request wait.
///
/// Two callers share it: ``CheckController``, the route, which answers every request and
/// every error; and the daemon's connection handler, which answers at once, on the
/// connection's event loop, the well-formed question of an accepted caller that has no
/// revision to wait for (``answerAtOnce(authorization:body:logger:)``), and hands anything
/// else to the route. Both give the same answer, from ``answer(_:caller:started:logger:)``.
public struct CheckAnswerer: Sendable {
    let index: CheckIndex
    let access: APIAccess
    /// The largest question body answered (`http.maxBodyBytes`); larger ones get 413.
    public let maxBodyBytes: Int
    let decisions: DecisionQueue?
    /// How long a check that asks for a revision (`atLeast`) waits for the index to reach it.
    let maxWait: Duration
    let duration = Metrics.Timer(label: "tether_check_duration_seconds")
    let allowed = Counter(label: "tether_checks_total", dimensions: [("allowed", "true")])
    let denied = Counter(label: "tether_checks_total", dimensions: [("allowed", "false")])

    /// - Parameters:
    ///   - index: the engine's check index (`engine.index`).
    ///   - access: holds the bearer tokens; without them the endpoint answers 404.
    ///   - maxBodyBytes: larger bodies are refused with 413 (`http.maxBodyBytes`).
    ///   - decisions: the decision log's queue; nil records nothing.
    ///   - maxWait: how long a question with `atLeast` waits for that revision (`check.maxWait`).
    ///
    /// Metrics are created here: bootstrap the metrics system first.
    public init(
        index: CheckIndex, access: APIAccess, maxBodyBytes: Int, decisions: DecisionQueue? = nil, maxWait: Duration = .milliseconds(100)
    ) {
        self.maxWait = maxWait
        self.index = index
        self.access = access
        self.maxBodyBytes = maxBodyBytes
        self.decisions = decisions
    }

    /// A 200 answer: the decision, its id, and the revision it was given at (`Tether-Revision`).
    public struct Answer: Sendable {
        public var decision: CheckDecision
        public var id: String
        public var revision: Int

        public init(decision: CheckDecision, id: String, revision: Int) {
            self.decision = decision
            self.id = id
            self.revision = revision
        }

        /// The JSON body: `allowed`, `grant` and `policy` for an allow, `reason`, `decision`
        /// (the id) and `revision`, in that order.
        public var body: String { String(buffer: buffer) }

        /// The JSON body in a buffer of its own.
        public var buffer: ByteBuffer {
            var buffer = ByteBuffer()
            write(into: &buffer)
            return buffer
        }

        /// Writes the JSON body at the end of `buffer`, with no text made on the way: a
        /// connection handler writes every answer into one buffer.
        public func write(into buffer: inout ByteBuffer) {
            buffer.writeStaticString(decision.allowed ? #"{"allowed":true"# : #"{"allowed":false"#)
            if let grant = decision.grant {
                buffer.writeStaticString(#","grant":"#)
                Self.write(grant, into: &buffer)
            }
            if let policy = decision.policy {
                buffer.writeStaticString(#","policy":"#)
                Self.write(policy, into: &buffer)
            }
            buffer.writeStaticString(#","reason":"#)
            Self.write(decision.reason, into: &buffer)
            buffer.writeStaticString(#","decision":"#)
            Self.write(id, into: &buffer)
            buffer.writeStaticString(#","revision":"#)
            buffer.writeString(String(revision))
            buffer.writeStaticString("}")
        }

        /// `value` as a JSON string literal, escaped as ``JSONValue`` escapes.
        private static func write(_ value: String, into buffer: inout ByteBuffer) {
            if CanonicalJSON.isPlain(value) {
                buffer.writeStaticString("\"")
                buffer.writeString(value)
                buffer.writeStaticString("\"")
            } else {
                var text = ""
                JSONValue.appendString(value, to: &text)
                buffer.writeString(text)
            }
        }
    }

    /// The answer to a request that needs nothing but the index: an accepted bearer token in
    /// `authorization`, the plain question object in `body` with no empty field, and no
    /// revision to wait for. Nil for anything else, which the route then answers or refuses
    /// with its error.
    public func answerAtOnce(authorization: String?, body: ByteBuffer, logger: Logger) -> Answer? {
        guard let caller = caller(authorization: authorization) else { return nil }
        return answerAtOnce(caller: caller.name, body: body, logger: logger)
    }

    /// The answer to `body` from `caller`, already accepted (``caller(authorization:)``), when
    /// it needs nothing but the index: the plain question object with no empty field, and no
    /// revision to wait for. Nil for anything else.
    public func answerAtOnce(caller: String, body: ByteBuffer, logger: Logger) -> Answer? {
        let started = ContinuousClock.now
        guard body.readableBytes <= maxBodyBytes, let question = Self.question(body),
            !question.subject.isEmpty, !question.agent.isEmpty, !question.scope.isEmpty, !question.resource.isEmpty
        else { return nil }
        if let wanted = question.atLeast, index.revision < wanted { return nil }
        return answer(question, caller: caller, started: started, logger: logger)
    }

    /// The name of the caller an `Authorization: Bearer` header presents, and the
    /// ``BearerTokens/generation`` of the tokens that accepted it; nil when no accepted token
    /// is presented, or the check has no tokens.
    public func caller(authorization: String?) -> (name: String, tokens: UInt64)? {
        guard let tokens = access.checkTokens, let presented = Self.bearerToken(authorization),
            let name = tokens.accepts(presented)
        else { return nil }
        return (name, tokens.generation)
    }

    /// Whether the tokens the check accepts are still those of `generation`.
    public func tokensUnchanged(since generation: UInt64) -> Bool {
        access.checkTokensGeneration == generation
    }

    /// Decides `question` for `caller`, counts and records the decision, and writes the answer.
    func answer(_ question: CheckRequest, caller: String, started: ContinuousClock.Instant, logger: Logger) -> Answer {
        let (decision, revision, policySet) = index.answer(question)
        let time = Date()
        let id = DecisionID.next(at: time)
        (decision.allowed ? allowed : denied).increment()
        decisions?.record(DecisionRecord(
            id: id, time: time, subject: question.subject, agent: question.agent, scope: question.scope,
            resource: question.resource, allowed: decision.allowed, grant: decision.grant, policy: decision.policy,
            policySet: policySet, revision: revision, caller: caller))
        logger.debug(
            "check decided",
            metadata: [
                "decision": "\(id)", "allowed": "\(decision.allowed)", "subject": "\(question.subject)",
                "agent": "\(question.agent)", "scope": "\(question.scope)", "resource": "\(question.resource)",
            ])
        duration.recordInterval(since: started)
        return Answer(decision: decision, id: id, revision: revision)
    }

    /// The question read without `JSONDecoder` when it is the plain object gateways send;
    /// nil for anything else, which the decoder then reads or refuses naming the field.
    static func question(_ body: ByteBuffer) -> CheckRequest? {
        body.readableBytesView.withContiguousStorageIfAvailable(CheckQuestion.read) ?? nil
    }

    /// The token of an `Authorization: Bearer <token>` header (the scheme is case-insensitive).
    /// Spaces and tabs after the token are the field's, not the token's (RFC 9110 §5.5): the
    /// HTTP decoder leaves them in the value, and the daemon's handler that reads checks from
    /// the connection's bytes leaves them out; both must accept the same tokens.
    static func bearerToken(_ header: String?) -> Substring? {
        guard let header, let space = header.firstIndex(of: " ") else { return nil }
        guard header[..<space].lowercased() == "bearer" else { return nil }
        var token = header[header.index(after: space)...].drop { $0 == " " }
        while let last = token.last, last == " " || last == "\t" { token = token.dropLast() }
        return token.isEmpty ? nil : token
    }
}

/// The `POST /v1/check` route: every request the connection handler did not answer at once,
/// and every refusal, with its error naming what and where.
public struct CheckController<Context: RequestContext>: Sendable {
    let answerer: CheckAnswerer

    public init(answerer: CheckAnswerer) {
        self.answerer = answerer
    }

    /// Adds `POST /v1/check` to `group`.
    public func addRoutes(to group: RouterGroup<Context>) {
        group.post("/v1/check", use: check)
    }

    /// Authenticates, decodes and decides one request.
    @Sendable func check(_ request: Request, context: Context) async throws -> Response {
        let started = ContinuousClock.now
        let index = answerer.index
        guard let tokens = answerer.access.checkTokens else {
            throw APIError(.notFound, "the check endpoint is not configured (check.tokenFile)")
        }
        guard let presented = CheckAnswerer.bearerToken(request.headers[.authorization]) else {
            throw APIError(
                .unauthorized, "a bearer token is required (Authorization: Bearer <token>)",
                headers: [.wwwAuthenticate: #"Bearer realm="tether""#])
        }
        guard let caller = tokens.accepts(presented) else {
            throw APIError(
                .unauthorized, "the bearer token is not accepted",
                headers: [.wwwAuthenticate: #"Bearer realm="tether", error="invalid_token""#])
        }
        let body = try await JSONBody.collect(request, limit: answerer.maxBodyBytes)
        let question = try CheckAnswerer.question(body) ?? JSONBody.decode(CheckRequest.self, from: body)
        for (field, value) in [
            ("subject", question.subject), ("agent", question.agent), ("scope", question.scope), ("resource", question.resource),
        ] where value.isEmpty {
            throw APIError(.malformed, "must not be empty", path: "$.\(field)")
        }

        // Read-your-writes across nodes (SPEC §14): the answer waits, a little, for the
        // revision the caller's write was answered with.
        if let wanted = question.atLeast, index.revision < wanted, await !index.wait(forRevision: wanted, timeout: answerer.maxWait) {
            throw APIError(
                .behind, "this node's index is at revision \(index.revision), behind the \(wanted) asked for; ask again",
                path: "$.atLeast", headers: [.retryAfter: "1", .tetherRevision: String(index.revision)])
        }
        let answer = answerer.answer(question, caller: caller, started: started, logger: context.logger)
        return Response(
            status: .ok, headers: [.contentType: "application/json", .tetherRevision: String(answer.revision)],
            body: ResponseBody(byteBuffer: answer.buffer))
    }
}

extension HTTPField.Name {
    /// The revision a write committed, or a check was answered at (SPEC §14).
    public static let tetherRevision = HTTPField.Name("Tether-Revision")!
}
