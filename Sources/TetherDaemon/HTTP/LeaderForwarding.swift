import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import TetherHTTP
import TetherTargets

/// A follower's writes, handed to the leader the lease names (SPEC §14).
struct LeaderForwarding: WriteForwarding {
    let leadership: Leadership
    let forwarder = LeaderForwarder()
    let logger: Logger

    func forward(method: HTTPRequest.Method, target: String, headers: HTTPFields, body: ByteBuffer) async throws -> Response? {
        let current = leadership.current
        if current.leading { return nil }
        guard let leader = current.leader, let address = current.leaderAddress, leader != current.node else {
            throw APIError(
                .noLeader, "no node leads at the moment (a new leader is chosen within ha.leaseDuration); nothing was applied, retry later",
                headers: [.retryAfter: "1"])
        }
        // A request another node already handed over is not handed on again.
        if headers[HTTPField.Name("Tether-Forwarded-By")!] != nil {
            throw APIError(.noLeader, "this node does not lead any more; nothing was applied, retry later", headers: [.retryAfter: "1"])
        }
        do {
            let answer = try await forwarder.forward(
                method: method.rawValue, target: target, headers: headers.map { ($0.name.rawName, $0.value) },
                body: Array(body.readableBytesView), to: address, from: current.node)
            return answer.response
        } catch let failure as LeaderForwarder.Failure {
            logger.warning("a write could not be handed to the leader", metadata: ["leader": "\(leader)", "error": "\(failure)"])
            throw APIError(
                .noLeader, "the leader (\(leader)) could not be reached; the write may not have been applied, retry it",
                headers: [.retryAfter: "1"])
        }
    }
}

extension LeaderForwarder.Answer {
    /// The leader's answer as this node relays it: status, headers and body unchanged.
    var response: Response {
        var fields = HTTPFields()
        for (name, value) in headers { if let field = HTTPField.Name(name) { fields.append(HTTPField(name: field, value: value)) } }
        return Response(status: HTTPResponse.Status(code: status), headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
    }
}
