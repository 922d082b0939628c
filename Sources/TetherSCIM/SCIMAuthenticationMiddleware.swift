import Foundation
import Hummingbird
import TetherCore

/// Lets a request through only with `Authorization: Bearer TOKEN` for one of the configured
/// tokens; anything else is `401` with `WWW-Authenticate: Bearer realm="tether-scim"` and a
/// SCIM error. Tokens are compared as SHA-256 digests in constant time, and never logged.
struct SCIMAuthenticationMiddleware<Context: RequestContext>: RouterMiddleware {
    private let credentials: SCIMCredentials

    init(credentials: SCIMCredentials) {
        self.credentials = credentials
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization] else {
            return Self.challenge("a bearer token is required (Authorization: Bearer TOKEN)")
        }
        let trimmed = header.trimmingCharacters(in: .whitespaces)
        let scheme = trimmed.prefix { $0 != " " }
        guard scheme.lowercased() == "bearer" else {
            return Self.challenge("the Authorization header must use the Bearer scheme")
        }
        let token = trimmed.dropFirst(scheme.count).trimmingCharacters(in: .whitespaces)
        guard !token.isEmpty else { return Self.challenge("a bearer token is required (Authorization: Bearer TOKEN)") }
        guard credentials.accepts(token) else { return Self.challenge("the bearer token is not valid") }
        return try await next(request, context)
    }

    static func challenge(_ detail: String) -> Response {
        var response = SCIMResponse.error(SCIMError.unauthorized(detail))
        response.headers[.wwwAuthenticate] = "Bearer realm=\"tether-scim\""
        return response
    }
}
