/// An error as a SCIM client sees it: an HTTP status, a `scimType` keyword and a detail
/// (RFC 7644 §3.12), rendered in the `urn:ietf:params:scim:api:messages:2.0:Error` schema.
public struct SCIMError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The `scimType` keywords of RFC 7644 §3.12 Table 9.
    public enum Kind: String, Sendable, Hashable {
        case invalidFilter, tooMany, uniqueness, mutability, invalidSyntax, invalidPath, noTarget,
            invalidValue, invalidVers, sensitive
    }

    /// The error message schema URN.
    public static let schema = "urn:ietf:params:scim:api:messages:2.0:Error"

    /// The HTTP status.
    public var status: Int
    /// The `scimType` keyword, for the 400 and 409 errors that have one.
    public var scimType: Kind?
    /// What is wrong and, where it helps, where (a JSON position, a filter offset, a path).
    public var detail: String

    /// An error with its status, keyword and detail.
    public init(status: Int, _ scimType: Kind? = nil, _ detail: String) {
        self.status = status
        self.scimType = scimType
        self.detail = detail
    }

    /// `status scimType: detail`, for logs and test failures.
    public var description: String {
        "\(status)\(scimType.map { " \($0.rawValue)" } ?? ""): \(detail)"
    }

    /// The error as a SCIM error document; `status` is a string, as RFC 7644 §3.12 shows it.
    public var document: SCIMJSON {
        var object = SCIMJSON.Object([
            .init("schemas", [.string(Self.schema)]),
            .init("status", .string(String(status))),
        ])
        if let scimType { object["scimType"] = .string(scimType.rawValue) }
        object["detail"] = .string(detail)
        return .object(object)
    }

    // MARK: The errors the service answers

    static func invalidFilter(_ detail: String) -> SCIMError { SCIMError(status: 400, .invalidFilter, detail) }
    static func invalidSyntax(_ detail: String) -> SCIMError { SCIMError(status: 400, .invalidSyntax, detail) }
    static func invalidValue(_ detail: String) -> SCIMError { SCIMError(status: 400, .invalidValue, detail) }
    static func invalidPath(_ detail: String) -> SCIMError { SCIMError(status: 400, .invalidPath, detail) }
    static func noTarget(_ detail: String) -> SCIMError { SCIMError(status: 400, .noTarget, detail) }
    static func mutability(_ detail: String) -> SCIMError { SCIMError(status: 400, .mutability, detail) }
    static func uniqueness(_ detail: String) -> SCIMError { SCIMError(status: 409, .uniqueness, detail) }
    static func notFound(_ detail: String) -> SCIMError { SCIMError(status: 404, nil, detail) }
    static func preconditionFailed(_ detail: String) -> SCIMError { SCIMError(status: 412, nil, detail) }
    static func unauthorized(_ detail: String) -> SCIMError { SCIMError(status: 401, nil, detail) }
    static func tooLarge(_ limit: Int) -> SCIMError {
        SCIMError(status: 413, nil, "the request body is larger than the limit of \(limit) bytes")
    }
    static func methodNotAllowed(_ method: String, _ path: String) -> SCIMError {
        SCIMError(status: 405, nil, "\(method) is not supported on \(path)")
    }
    static func unavailable(_ detail: String) -> SCIMError { SCIMError(status: 503, nil, detail) }
    static func internalError(_ detail: String) -> SCIMError { SCIMError(status: 500, nil, detail) }
}
