import Crypto
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL
import ServerHarness
import Synchronization
import TetherCore
#if canImport(Glibc)
import Glibc
#endif

/// A grant target written for the tests: a small Hummingbird app on a free loopback port that
/// keeps grants as the contract says, records every request, verifies every signature, and can
/// be told to fail, hang, reset connections or go down, then recover.
///
/// Each fake listens on its own address in 127.0.0.0/8 and has its own secret: a port it frees
/// while down cannot be taken by another fake that the deliverer would then talk to, and a
/// request that reaches the wrong fake anyway fails its signature.
final class FakeTarget: Sendable {
    /// How the target answers the next requests.
    enum Behaviour: Sendable, Equatable {
        case normal
        /// Answers `status` (and `Retry-After` when given) to every request.
        case fail(status: Int, retryAfter: String? = nil)
        /// Answers `status` to the next `count` requests, then behaves normally.
        case failNext(count: Int, status: Int, retryAfter: String? = nil)
        /// Never answers until told otherwise.
        case hang
        /// Resets the connection (TCP RST) as soon as a request arrives.
        case reset
    }

    /// How `GET` pages point to the next page.
    enum Paging: Sendable {
        case cursor, path, absoluteURL
    }

    struct Request: Sendable {
        var method: String
        var path: String
        var headers: [String: String]
        var body: [UInt8]
        var signatureValid: Bool
        /// What the target did: a status, or `hung` / `reset`.
        var answer: String
        var time: Date

        var grantID: String { String(path.split(separator: "/").last ?? "") }
        var json: [String: String]? { try? JSONDecoder().decode([String: String].self, from: Data(body)) }
    }

    private struct State {
        var behaviour: Behaviour = .normal
        var grants: [String: Grant] = [:]
        var requests: [Request] = []
        var pageSize = 1_000
        var paging: Paging = .cursor
        /// Pages of `GET` after which the target fails (for a partial read).
        var failGetAfterPages: Int?
        /// Grants whose changes the target refuses with 422.
        var refusing: Set<String> = []
        var port: Int?
    }

    let secret: [UInt8]
    let tls: TLSConfiguration?
    /// The loopback address the fake listens on.
    let host: String
    private let state = Mutex(State())
    private let server = Mutex<RunningServer?>(nil)

    init(secret: String = "secret-\(UUID().uuidString)", tls: TLSConfiguration? = nil, host: String = FakeTarget.loopbackAddress()) {
        self.secret = Array(secret.utf8)
        self.tls = tls
        self.host = host
    }

    /// A random address in 127.0.0.0/8, which Linux routes to the loopback interface.
    static func loopbackAddress() -> String {
        "127.\(Int.random(in: 1...254)).\(Int.random(in: 0...255)).\(Int.random(in: 1...254))"
    }

    // MARK: Control

    var port: Int { state.withLock { $0.port ?? 0 } }
    var url: String { "\(tls == nil ? "http" : "https")://\(host):\(port)/grants" }
    var requests: [Request] { state.withLock { $0.requests } }
    var held: [String: Grant] { state.withLock { $0.grants } }
    var behaviour: Behaviour {
        get { state.withLock { $0.behaviour } }
        set { state.withLock { $0.behaviour = newValue } }
    }

    func forget(_ ids: some Sequence<String>) { state.withLock { for id in ids { $0.grants[id] = nil } } }
    func hold(_ grants: [Grant]) { state.withLock { for grant in grants { $0.grants[grant.id] = grant } } }
    func page(size: Int, paging: Paging = .cursor, failAfterPages: Int? = nil) {
        state.withLock {
            $0.pageSize = size
            $0.paging = paging
            $0.failGetAfterPages = failAfterPages
        }
    }
    func forgetRequests() { state.withLock { $0.requests = [] } }
    func refuse(_ ids: Set<String>) { state.withLock { $0.refusing = ids } }

    /// Starts listening: on a free port the first time, on the same port after `stop()`.
    func start() async throws {
        let port = state.withLock { $0.port } ?? 0
        let router = Router()
        router.put("/grants/:id") { request, context in try await self.handle(request, context) }
        router.delete("/grants/:id") { request, context in try await self.handle(request, context) }
        router.get("/grants") { request, context in try await self.handle(request, context) }
        let http1 = HTTPServerBuilder.http1(configuration: .init(additionalChannelHandlers: [ResetHandler(target: self)]))
        let builder = try tls.map { try HTTPServerBuilder.tls(http1, tlsConfiguration: $0) } ?? http1
        var logger = Logger(label: "fake-target")
        logger.logLevel = .critical
        let running = await RunningServer.start(logger: logger) { onServerRunning in
            Application(
                router: router, server: builder,
                configuration: .init(address: .hostname(host, port: port), serverName: "fake-target"),
                onServerRunning: onServerRunning, logger: logger)
        }
        guard let running else { throw FakeTargetError.notListening }
        server.withLock { $0 = running }
        state.withLock { $0.port = running.port }
    }

    /// Stops listening: connections are refused until `start()`.
    /// Starts again on the same port after `stop()`, retrying while the port is still taken:
    /// a connection of the old server closing, or, on a busy machine, another process's
    /// outgoing connection that was given the port meanwhile.
    func restart(within seconds: TimeInterval = 20) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while true {
            do {
                return try await start()
            } catch FakeTargetError.notListening where Date() < deadline {
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    func stop() async {
        let running = server.withLock { running in
            defer { running = nil }
            return running
        }
        await running?.stop()
    }

    // MARK: Requests

    private func handle(_ request: Hummingbird.Request, _ context: BasicRequestContext) async throws -> Response {
        let buffer = try await request.body.collect(upTo: 1 << 20)
        let body = Array(buffer.readableBytesView)
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.canonicalName] = field.value }
        let valid = verify(
            headers["tether-signature"], method: request.method.rawValue, target: request.uri.string,
            idempotencyKey: headers["idempotency-key"], body: body)
        let method = request.method.rawValue
        let path = request.uri.path
        let query = request.uri.queryParameters.get("cursor")

        var answer: Response?
        var status = 0
        var hang = false
        state.withLock { state in
            switch state.behaviour {
            case .fail(let failing, let retryAfter):
                status = failing
                answer = Self.failure(failing, retryAfter: retryAfter)
            case .failNext(let count, let failing, let retryAfter):
                status = failing
                answer = Self.failure(failing, retryAfter: retryAfter)
                state.behaviour = count > 1 ? .failNext(count: count - 1, status: failing, retryAfter: retryAfter) : .normal
            case .hang:
                hang = true
            case .normal, .reset:
                let id = String(path.split(separator: "/").last ?? "")
                if state.refusing.contains(id) {
                    status = 422
                    answer = Response(status: .unprocessableContent)
                }
            }
        }
        if hang {
            record(method, path, headers, body, valid, answer: "hung")
            while behaviour == .hang { try await Task.sleep(for: .milliseconds(10)) }
            throw HTTPError(.serviceUnavailable)
        }
        if let answer {
            record(method, path, headers, body, valid, answer: String(status))
            return answer
        }
        guard valid else {
            record(method, path, headers, body, valid, answer: "401")
            return Response(status: .unauthorized)
        }
        let (code, response) = state.withLock { state -> (Int, Response) in
            switch request.method {
            case .put:
                let id = String(path.split(separator: "/").last ?? "")
                guard let grant = try? JSONDecoder().decode(Grant.self, from: Data(body)), grant.id == id else {
                    return (400, Response(status: .badRequest))
                }
                let created = state.grants[id] == nil
                state.grants[id] = grant
                return created ? (201, Response(status: .created)) : (200, Response(status: .ok))
            case .delete:
                let id = String(path.split(separator: "/").last ?? "")
                return state.grants.removeValue(forKey: id) == nil
                    ? (404, Response(status: .notFound)) : (204, Response(status: .noContent))
            default:
                let offset = Int(query ?? "0") ?? 0
                let page = offset / max(1, state.pageSize)
                if let limit = state.failGetAfterPages, page >= limit {
                    return (500, Response(status: .internalServerError))
                }
                let all = state.grants.values.sorted { $0.id < $1.id }
                let slice = Array(all.dropFirst(offset).prefix(state.pageSize))
                var object: [String: Any] = [
                    "grants": slice.map { ["subject": $0.subject, "agent": $0.agent, "scope": $0.scope, "resource": $0.resource] }
                ]
                let nextOffset = offset + slice.count
                if nextOffset < all.count {
                    switch state.paging {
                    case .cursor: object["next"] = String(nextOffset)
                    case .path: object["next"] = "/grants?cursor=\(nextOffset)"
                    case .absoluteURL: object["next"] = "http://\(self.host):\(state.port ?? 0)/grants?cursor=\(nextOffset)"
                    }
                }
                let data = (try? JSONSerialization.data(withJSONObject: object)) ?? Data()
                return (200, Response(
                    status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data))))
            }
        }
        record(method, path + (query.map { "?cursor=\($0)" } ?? ""), headers, body, valid, answer: String(code))
        return response
    }

    private static func failure(_ status: Int, retryAfter: String?) -> Response {
        var headers = HTTPFields()
        if let retryAfter { headers[.retryAfter] = retryAfter }
        return Response(status: .init(code: status), headers: headers)
    }

    private func record(_ method: String, _ path: String, _ headers: [String: String], _ body: [UInt8], _ valid: Bool, answer: String) {
        let request = Request(
            method: method, path: path, headers: headers, body: body, signatureValid: valid, answer: answer, time: Date())
        state.withLock { $0.requests.append(request) }
    }

    /// Checks `Tether-Signature` as docs/targets.md tells a target to: `t` within 5 minutes, and
    /// a `v2` that is the HMAC-SHA256 of `"<t>\n<METHOD>\n<path>\n<Idempotency-Key>\n<body>"`,
    /// compared in constant time.
    func verify(_ header: String?, method: String, target: String, idempotencyKey: String?, body: [UInt8]) -> Bool {
        guard let header else { return false }
        var timestamp: Int64?
        var macs: [String] = []
        for part in header.split(separator: ",") {
            let pair = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard pair.count == 2 else { continue }
            if pair[0] == "t" { timestamp = Int64(pair[1]) }
            if pair[0] == "v2" { macs.append(pair[1]) }
        }
        guard let timestamp, abs(Date().timeIntervalSince1970 - Double(timestamp)) <= 300 else { return false }
        let key = SymmetricKey(data: secret)
        let signed = Array("\(timestamp)\n\(method)\n\(target)\n\(idempotencyKey ?? "")\n".utf8) + body
        return macs.contains { mac in
            guard let bytes = Self.bytes(hex: mac) else { return false }
            return HMAC<SHA256>.isValidAuthenticationCode(bytes, authenticating: signed, using: key)
        }
    }

    private static func bytes(hex: String) -> [UInt8]? {
        let digits = Array(hex.utf8)
        guard digits.count % 2 == 0 else { return nil }
        var out: [UInt8] = []
        for index in stride(from: 0, to: digits.count, by: 2) {
            guard let byte = UInt8(String(decoding: digits[index..<index + 2], as: UTF8.self), radix: 16) else { return nil }
            out.append(byte)
        }
        return out
    }

    /// Records a request the connection was reset on.
    fileprivate func recordReset() {
        record("?", "?", [:], [], false, answer: "reset")
    }
}

enum FakeTargetError: Error {
    case notListening
}

/// Resets the connection (SO_LINGER 0, then close: a TCP RST) when the target is told to.
private final class ResetHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = Any
    let target: FakeTarget
    private var resetting = false

    init(target: FakeTarget) { self.target = target }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard resetting || target.behaviour == .reset else {
            context.fireChannelRead(data)
            return
        }
        guard !resetting else { return }
        resetting = true
        target.recordReset()
        let channel = context.channel
        guard let socket = channel as? any SocketOptionProvider else {
            channel.close(promise: nil)
            return
        }
        socket.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in channel.close(promise: nil) }
    }
}
