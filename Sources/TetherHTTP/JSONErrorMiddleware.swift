import Hummingbird

/// Answers every error that reaches it as `{"error": "...", "detail": "..."}`: Hummingbird's
/// own (404 for an unknown path or method, 413) and anything unexpected (500, logged, its
/// text not shown). ``APIError`` and other typed HTTP errors (SCIM's) pass through unchanged.
///
/// Like every router middleware, it covers the routes added after it.
public struct JSONErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Creates the middleware.
    public init() {}

    /// Runs the rest of the chain and renders its errors as JSON.
    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            throw error
        } catch let error as HTTPError {
            let detail = error.body ?? Self.detail(for: error.status, request: request)
            return JSONValue.response(
                error.status, [("error", .string(Self.code(for: error.status))), ("detail", .string(detail))], headers: error.headers)
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            return APIError(.tooLarge, "the body is too large").response()
        } catch let error as any HTTPResponseError {
            throw error
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(error)"])
            return APIError(.internal, "the request failed; nothing was applied").response()
        }
    }

    /// `not_found`, `method_not_allowed`, …: the reason phrase in snake case.
    static func code(for status: HTTPResponse.Status) -> String {
        status.reasonPhrase.lowercased().map { $0.isLetter || $0.isNumber ? $0 : "_" }.reduce(into: "") { $0.append($1) }
    }

    static func detail(for status: HTTPResponse.Status, request: Request) -> String {
        status == .notFound ? "no endpoint \(request.method) \(request.uri.path)" : status.reasonPhrase
    }
}
