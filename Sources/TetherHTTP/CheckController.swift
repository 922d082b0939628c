import Foundation
import HTTPTypes
import Hummingbird
import Metrics
import TetherCore
import TetherEngine

/// `POST /v1/check` (SPEC §7): may this subject use this agent with this scope on this
/// resource? Answered from the engine's in-memory ``CheckIndex``: no store read and no hop
/// onto the engine actor, so it stays fast and reflects every committed revocation. Each
/// answer is handed to the decision log's queue, which never makes the request wait.
public struct CheckController<Context: RequestContext>: Sendable {
    let index: CheckIndex
    let access: APIAccess
    let maxBodyBytes: Int
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

    /// Adds `POST /v1/check` to `group`.
    public func addRoutes(to group: RouterGroup<Context>) {
        group.post("/v1/check", use: check)
    }

    /// Authenticates, decodes and decides one request.
    @Sendable func check(_ request: Request, context: Context) async throws -> Response {
        let started = ContinuousClock.now
        guard let tokens = access.checkTokens else { throw APIError(.notFound, "the check endpoint is not configured (check.tokenFile)") }
        guard let presented = Self.bearerToken(request.headers[.authorization]) else {
            throw APIError(
                .unauthorized, "a bearer token is required (Authorization: Bearer <token>)",
                headers: [.wwwAuthenticate: #"Bearer realm="tether""#])
        }
        guard let caller = tokens.accepts(presented) else {
            throw APIError(
                .unauthorized, "the bearer token is not accepted",
                headers: [.wwwAuthenticate: #"Bearer realm="tether", error="invalid_token""#])
        }
        let body = try await JSONBody.collect(request, limit: maxBodyBytes)
        let question = try Self.question(body) ?? JSONBody.decode(CheckRequest.self, from: body)
        for (field, value) in [
            ("subject", question.subject), ("agent", question.agent), ("scope", question.scope), ("resource", question.resource),
        ] where value.isEmpty {
            throw APIError(.malformed, "must not be empty", path: "$.\(field)")
        }

        // Read-your-writes across nodes (SPEC §14): the answer waits, a little, for the
        // revision the caller's write was answered with.
        if let wanted = question.atLeast, index.revision < wanted, await !index.wait(forRevision: wanted, timeout: maxWait) {
            throw APIError(
                .behind, "this node's index is at revision \(index.revision), behind the \(wanted) asked for; ask again",
                path: "$.atLeast", headers: [.retryAfter: "1", .tetherRevision: String(index.revision)])
        }
        let (decision, revision, policySet) = index.answer(question)
        let time = Date()
        let id = DecisionID.next(at: time)
        (decision.allowed ? allowed : denied).increment()
        decisions?.record(DecisionRecord(
            id: id, time: time, subject: question.subject, agent: question.agent, scope: question.scope,
            resource: question.resource, allowed: decision.allowed, grant: decision.grant, policy: decision.policy,
            policySet: policySet, revision: revision, caller: caller))
        context.logger.debug(
            "check decided",
            metadata: [
                "decision": "\(id)", "allowed": "\(decision.allowed)", "subject": "\(question.subject)",
                "agent": "\(question.agent)", "scope": "\(question.scope)", "resource": "\(question.resource)",
            ])
        var fields: [(String, JSONValue)] = [("allowed", .bool(decision.allowed))]
        if let grant = decision.grant { fields.append(("grant", .string(grant))) }
        if let policy = decision.policy { fields.append(("policy", .string(policy))) }
        fields.append(("reason", .string(decision.reason)))
        fields.append(("decision", .string(id)))
        fields.append(("revision", .int(revision)))
        var response = JSONValue.response(.ok, fields)
        response.headers[.tetherRevision] = String(revision)
        duration.recordInterval(since: started)
        return response
    }

    /// The question read without `JSONDecoder` when it is the plain object gateways send;
    /// nil for anything else, which the decoder then reads or refuses naming the field.
    static func question(_ body: ByteBuffer) -> CheckRequest? {
        body.readableBytesView.withContiguousStorageIfAvailable(CheckQuestion.read) ?? nil
    }

    /// The token of an `Authorization: Bearer <token>` header (the scheme is case-insensitive).
    static func bearerToken(_ header: String?) -> Substring? {
        guard let header, let space = header.firstIndex(of: " ") else { return nil }
        guard header[..<space].lowercased() == "bearer" else { return nil }
        let token = header[header.index(after: space)...].drop { $0 == " " }
        return token.isEmpty ? nil : token
    }
}

extension HTTPField.Name {
    /// The revision a write committed, or a check was answered at (SPEC §14).
    public static let tetherRevision = HTTPField.Name("Tether-Revision")!
}
