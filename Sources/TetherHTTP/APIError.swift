import Hummingbird

/// An error the public API answers with: a status, a short machine-readable `error`, a
/// `detail` a person can act on, and for malformed bodies the JSON path of the fault.
///
/// It renders as `{"error": "...", "detail": "...", "path": "..."}`, never with a secret,
/// a signature or a token in it.
public struct APIError: Error, HTTPResponseError, CustomStringConvertible, Sendable {
    /// What went wrong, which fixes the status code and the `error` field.
    public enum Code: String, Sendable, Hashable {
        /// 400: the body is not valid JSON or does not have the expected shape.
        case malformed = "invalid_request"
        /// 401: missing or wrong credentials (signature, timestamp or bearer token).
        case unauthorized
        /// 404: no such endpoint, or an endpoint that is not configured.
        case notFound = "not_found"
        /// 409: the request conflicts with what was received before (an event id reused for another body).
        case conflict
        /// 413: the body is larger than `http.maxBodyBytes`.
        case tooLarge = "payload_too_large"
        /// 503: the store could not commit; nothing was applied, the request may be retried.
        case unavailable = "store_unavailable"
        /// 503: this node's check index has not reached the revision asked for (`atLeast`).
        case behind = "index_behind"
        /// 503: this node follows and cannot reach the leader that takes writes.
        case noLeader = "no_leader"
        /// 500: anything else; nothing was applied.
        case `internal` = "internal_error"

        /// The HTTP status this code is answered with.
        public var status: HTTPResponse.Status {
            switch self {
            case .malformed: .badRequest
            case .unauthorized: .unauthorized
            case .notFound: .notFound
            case .conflict: .conflict
            case .tooLarge: .contentTooLarge
            case .unavailable, .behind, .noLeader: .serviceUnavailable
            case .internal: .internalServerError
            }
        }
    }

    /// What went wrong.
    public var code: Code
    /// What happened and what to do, in words.
    public var detail: String
    /// Where in the body the fault is, as a JSON path (`$.user.externalId`); nil when it is not about a field.
    public var path: String?
    /// Extra response headers (`WWW-Authenticate` for a bearer challenge).
    public var headers: HTTPFields
    /// The error underneath, for logs; never rendered into the response.
    public var underlying: (any Error)?

    /// Creates an error answered with `code`'s status.
    public init(_ code: Code, _ detail: String, path: String? = nil, headers: HTTPFields = [:], underlying: (any Error)? = nil) {
        self.code = code
        self.detail = detail
        self.path = path
        self.headers = headers
        self.underlying = underlying
    }

    /// The HTTP status of the answer.
    public var status: HTTPResponse.Status { code.status }

    /// `path: detail`, or the detail alone.
    public var description: String {
        path.map { "\($0): \(detail)" } ?? detail
    }

    /// Renders the error as its JSON body.
    public func response(from request: Request, context: some RequestContext) throws -> Response {
        response()
    }

    /// The JSON answer, without needing a request.
    func response() -> Response {
        var fields: [(String, JSONValue)] = [("error", .string(code.rawValue)), ("detail", .string(description))]
        if let path { fields.append(("path", .string(path))) }
        return JSONValue.response(status, fields, headers: headers)
    }
}
