import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization
import TetherCore
import TetherHTTP
import TetherTargets

/// How the nodes on one store vouch for the operator commands they hand each other (SPEC §14):
/// the `Tether-Signature` scheme's `v2`, under the secret of `ha.peerSecretFile`, binding the
/// method, the target, the body and, in the idempotency key's place, the sending node, the
/// operator it named and a nonce. The leader runs a command once per nonce, within
/// ``tolerance`` of when it was signed.
struct PeerSignature: Sendable {
    static let minimumSecretBytes = 32
    /// How far apart the nodes' clocks and the hand-over may be.
    static let tolerance: Duration = .seconds(30)
    /// Where a leader takes the operator commands of the other nodes, on its public listener.
    static let prefix = "/v1/peer/admin"
    static let operatorHeader = HTTPField.Name("Tether-Operator")!
    static let nonceHeader = HTTPField.Name("Tether-Peer-Nonce")!
    static let nodeHeader = HTTPField.Name("Tether-Forwarded-By")!

    let signature: TetherSignature

    init(secret: [UInt8]) { signature = TetherSignature(secret: secret) }

    /// What the signature binds besides the request: the node, the operator and the nonce.
    /// None holds a space (a node name is one word, a Unix user name has none, the nonce is a
    /// UUID), so the three split one way only.
    static func binding(node: String, actor: Actor, nonce: String) -> String { "\(node) \(actor) \(nonce)" }

    /// The header value signing a command `node` hands over for `actor`.
    func header(
        method: String, target: String, node: String, actor: Actor, nonce: String, body: some DataProtocol, time: Date
    ) -> String {
        let t = TetherSignature.timestamp(time)
        let code = signature.v2(
            timestamp: String(t), method: method, target: target,
            idempotencyKey: Self.binding(node: node, actor: actor, nonce: nonce), body: body)
        return TetherSignature.header(timestamp: t, v2: code)
    }

    /// `header` parsed and fresh as of `now`: what can be known before the body is read.
    static func presented(_ header: String?, now: Date) throws(TetherSignature.Failure) -> TetherSignature.Header {
        try TetherSignature.Header(parsing: header, requiring: .v2, now: now, tolerance: Self.tolerance)
    }

    /// Whether `presented` signs this request under the shared secret.
    func verify(
        _ presented: TetherSignature.Header, method: String, target: String, node: String, actor: Actor, nonce: String,
        body: some DataProtocol
    ) throws(TetherSignature.Failure) {
        let code = signature.v2(
            timestamp: presented.timestamp, method: method, target: target,
            idempotencyKey: Self.binding(node: node, actor: actor, nonce: nonce), body: body)
        guard signature.matches(code, in: presented, scheme: .v2) else {
            throw .mismatch(scheme: .v2, signatures: presented.signatures[.v2]?.given ?? 0)
        }
    }
}

/// The nonces of the commands taken within the signature's tolerance: a command captured on
/// the wire and sent again is refused.
final class PeerNonces: Sendable {
    private let seen = Mutex<[String: Date]>([:])

    /// True the first time `nonce` is presented; forgets nonces older than the tolerance.
    func admit(_ nonce: String, now: Date) -> Bool {
        let horizon = now.addingTimeInterval(-2 * HACoordinator.seconds(PeerSignature.tolerance))
        return seen.withLock { seen in
            if seen.count > 1_024 { seen = seen.filter { $0.value > horizon } }
            guard seen[nonce] == nil else { return false }
            seen[nonce] = now
            return true
        }
    }
}

/// On a follower: the operator commands that change something go to the leader, signed, under
/// the name of the operator this node identified; the leader's answer comes back unchanged.
/// Without `ha.peerSecretFile` they are refused with the leader's name. Reads, `reload` (each
/// node reads its own file), `explain` and the test hooks are answered here.
struct FollowerAdminMiddleware: RouterMiddleware {
    typealias Context = AdminContext
    let leadership: Leadership
    /// Signs the commands handed to the leader; nil when they are refused instead.
    let peer: PeerSignature?
    let logger: Logger
    /// Operator commands may run long (a full directory re-read), and an ingest is large.
    let forwarder = LeaderForwarder(timeout: .seconds(3_600), maxResponseBytes: 64 * 1_048_576)
    static var local: [String] { ["/v1/reload", "/v1/explain", "/v1/debug/"] }
    static let maxBodyBytes = 64 * 1_048_576

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let current = leadership.current
        guard request.method != .get, request.method != .head, !current.leading, !Self.local.contains(where: request.uri.path.hasPrefix)
        else { return try await next(request, context) }
        if context.forwarded != nil {
            throw HTTPError(.serviceUnavailable, message: "this node (\(current.node)) no longer leads; nothing was changed, run the command again")
        }
        guard let leader = current.leader, let address = current.leaderAddress, leader != current.node else {
            throw HTTPError(
                .serviceUnavailable,
                message: "no node leads at the moment (a new leader is chosen within ha.leaseDuration); nothing was changed, run the command again")
        }
        guard let peer else {
            throw HTTPError(
                .serviceUnavailable,
                message: "this node (\(current.node)) follows; run the command on the leader's host, \(leader) (\(address)), "
                    + "or give every node ha.peerSecretFile so followers hand operator commands over")
        }
        let actor = try await context.operatorActor()
        var request = request
        let body = try await request.collectBody(upTo: Self.maxBodyBytes)
        let bytes = Array(body.readableBytesView)
        let target = PeerSignature.prefix + request.uri.description
        let nonce = UUID().uuidString
        var headers = request.headers.filter { $0.name == .contentType || $0.name == .accept }.map { ($0.name.rawName, $0.value) }
        headers.append((PeerSignature.operatorHeader.rawName, actor.description))
        headers.append((PeerSignature.nonceHeader.rawName, nonce))
        headers.append((
            "Tether-Signature",
            peer.header(method: request.method.rawValue, target: target, node: current.node, actor: actor, nonce: nonce, body: bytes, time: Date())
        ))
        do {
            let answer = try await forwarder.forward(
                method: request.method.rawValue, target: target, headers: headers, body: bytes, to: address, from: current.node)
            return answer.response
        } catch let failure as LeaderForwarder.Failure {
            logger.warning("an operator command could not be handed to the leader", metadata: ["leader": "\(leader)", "error": "\(failure)"])
            throw HTTPError(
                .serviceUnavailable,
                message: "the leader (\(leader)) could not be reached; the command may or may not have run there: check with tether status, then run it again")
        }
    }
}

/// On every node's public listener, with `ha.peerSecretFile`: the operator commands another
/// node hands over, verified and run by this node's admin API under the operator's name.
/// Anything else under ``PeerSignature/prefix`` — unsigned, stale, replayed, or signed with
/// another secret — is refused with 401 before the body reaches the admin API.
struct PeerAdminMiddleware<Context: RequestContext>: RouterMiddleware {
    let peer: PeerSignature
    let admin: any HTTPResponder<AdminContext>
    let nonces = PeerNonces()
    let logger: Logger

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.uri.path.hasPrefix(PeerSignature.prefix + "/") else { return try await next(request, context) }
        let target = request.uri.description
        guard let node = request.headers[PeerSignature.nodeHeader], let operatorName = request.headers[PeerSignature.operatorHeader],
            operatorName.hasPrefix("operator:"), let nonce = request.headers[PeerSignature.nonceHeader]
        else {
            throw HTTPError(.unauthorized, message: "an operator command from another node names its node, operator and nonce")
        }
        let actor = Actor(operatorName)
        do {
            // Unsigned or stale is refused before the body (up to an ingest's size) is read.
            let presented = try PeerSignature.presented(request.headers[WebhookSignature.headerName], now: Date())
            var request = request
            let body = try await request.collectBody(upTo: FollowerAdminMiddleware.maxBodyBytes)
            try peer.verify(presented, method: request.method.rawValue, target: target, node: node, actor: actor, nonce: nonce, body: body.readableBytesView)
            return try await run(request, body: body, target: target, node: node, actor: actor, nonce: nonce)
        } catch let failure as TetherSignature.Failure {
            logger.warning(
                "an operator command handed over by another node was refused: check that every node has the same ha.peerSecretFile and a synchronised clock",
                metadata: ["node": "\(node)", "reason": "\(failure)"])
            throw HTTPError(.unauthorized, message: "refused: \(failure)")
        }
    }

    /// Runs a verified command through the admin API, once per nonce.
    private func run(_ request: Request, body: ByteBuffer, target: String, node: String, actor: Actor, nonce: String) async throws -> Response {
        guard nonces.admit(nonce, now: Date()) else {
            throw HTTPError(.unauthorized, message: "refused: this command was already taken once")
        }
        logger.info("running an operator command handed over by another node", metadata: [
            "node": "\(node)", "operator": "\(actor)", "command": "\(request.method.rawValue) \(target.dropFirst(PeerSignature.prefix.count))",
        ])
        var head = request.head
        head.path = String(target.dropFirst(PeerSignature.prefix.count))
        let inner = Request(head: head, body: RequestBody(buffer: body))
        return try await admin.respond(to: inner, context: AdminContext(forwardedBy: node, actor: actor, logger: logger))
    }
}
