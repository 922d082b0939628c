import Foundation
import HTTPTypes
import Hummingbird

/// Where this node's writes go when several daemons share a store (SPEC §14): the leader
/// takes them; a follower hands them over and relays the leader's answer.
public protocol WriteForwarding: Sendable {
    /// The leader's answer to a write this node does not take itself; nil when this node
    /// leads and takes it. Throws ``APIError`` when no leader can be reached.
    func forward(method: HTTPRequest.Method, target: String, headers: HTTPFields, body: ByteBuffer) async throws -> Response?
}

/// Hands the writes a follower receives (HR events, SCIM changes) to the leader. Reads (`GET`,
/// `HEAD`) and checks are answered here, from this node's own state.
public struct WriteForwardingMiddleware<Context: RequestContext>: RouterMiddleware {
    let forwarding: any WriteForwarding
    let maxBodyBytes: Int
    /// The path prefixes whose writes go to the leader.
    static var forwarded: [String] { ["/hooks/", "/scim/", "/review/"] }

    public init(forwarding: any WriteForwarding, maxBodyBytes: Int) {
        self.forwarding = forwarding
        self.maxBodyBytes = maxBodyBytes
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method != .get, request.method != .head, Self.forwarded.contains(where: request.uri.path.hasPrefix) else {
            return try await next(request, context)
        }
        var request = request
        let body = try await request.collectBody(upTo: maxBodyBytes)
        if let answer = try await forwarding.forward(
            method: request.method, target: request.uri.description, headers: request.headers, body: body)
        {
            return answer
        }
        return try await next(request, context)
    }
}
