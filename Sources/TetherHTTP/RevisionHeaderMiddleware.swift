import Hummingbird
import TetherEngine

/// Adds `Tether-Revision` to the answers of writes (SPEC §14): the revision the check index
/// reached once the write was committed, which a check on any node can ask for (`atLeast`).
public struct RevisionHeaderMiddleware<Context: RequestContext>: RouterMiddleware {
    let index: CheckIndex

    public init(index: CheckIndex) { self.index = index }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        if request.method != .get, request.method != .head, response.headers[.tetherRevision] == nil {
            response.headers[.tetherRevision] = String(index.revision)
        }
        return response
    }
}
