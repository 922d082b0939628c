import Crypto
import Foundation
import Hummingbird
import Logging
import NIOCore
import ServerHarness
import Synchronization

/// An HTTP grant target for the daemon tests (SPEC §6): a small Hummingbird app on a free
/// loopback port that keeps grants as the contract says and records every change it receives,
/// in order, with its `Idempotency-Key` and whether its `Tether-Signature` verified.
///
/// A hook runs after a change was applied and before it is answered: a test can kill the
/// daemon there, so the target holds a change the daemon never saw acknowledged.
final class RecordingTarget: Sendable {
    /// One `PUT` or `DELETE`, as received.
    struct Change: Sendable, CustomStringConvertible {
        enum Operation: String, Sendable { case put = "PUT", delete = "DELETE" }
        var operation: Operation
        var grantID: String
        /// The outbox row the change came from: the number after `<target>:` in `Idempotency-Key`.
        var outboxID: Int64?
        var idempotencyKey: String
        var signatureValid: Bool
        /// The grant as `subject agent scope resource`, for a `PUT`.
        var grant: String?

        var description: String { "\(operation.rawValue) \(grantID) key=\(idempotencyKey)" }
    }

    /// How the target fails while it is told to: it applies nothing and lists nothing.
    enum Failure: Sendable {
        /// Answers every request with 500.
        case status500
        /// Answers nothing for this long (longer than the daemon's timeout), then 500.
        case hang(Duration)
    }

    private struct State {
        var grants: [String: String] = [:]
        var changes: [Change] = []
        var refused: [Change] = []
        var port: Int?
        var onChange: (@Sendable (Int) -> Void)?
        var latency: Duration = .zero
        var failure: Failure?
        var checkpoints: [Checkpoint] = []
        var refusedCheckpoints: [Checkpoint] = []
    }

    /// An audit checkpoint POSTed to `/checkpoints` (`audit.checkpointTarget`), as received.
    struct Checkpoint: Sendable {
        var body: String
        var idempotencyKey: String
        var signatureValid: Bool
    }

    let secret: [UInt8]
    private let state = Mutex(State())
    private let server = Mutex<RunningServer?>(nil)

    init(secret: String) {
        self.secret = Array(secret.utf8)
    }

    var url: String { "http://127.0.0.1:\(state.withLock { $0.port ?? 0 })/grants" }
    /// Grants held now, by id, as `subject agent scope resource`.
    var held: [String: String] { state.withLock { $0.grants } }
    /// Makes the target hold `grants` (`subject agent scope resource` by id) that Tether never
    /// sent: orphans, for the drift check to find.
    func plant(_ grants: [String: String]) {
        state.withLock { $0.grants.merge(grants) { _, planted in planted } }
    }
    /// Every change received and applied so far, in order.
    var changes: [Change] { state.withLock { $0.changes } }
    /// Every change received while failing, in order: none of them was applied.
    var refused: [Change] { state.withLock { $0.refused } }
    /// Every audit checkpoint received and acknowledged so far, in order.
    var checkpoints: [Checkpoint] { state.withLock { $0.checkpoints } }
    /// Every audit checkpoint received while failing, in order.
    var refusedCheckpoints: [Checkpoint] { state.withLock { $0.refusedCheckpoints } }
    /// Where `audit.checkpointTarget` sends checkpoints.
    var checkpointURL: String { "http://127.0.0.1:\(state.withLock { $0.port ?? 0 })/checkpoints" }

    /// Makes the target fail as `failure` says from now on; nil makes it work again.
    func fail(_ failure: Failure?) {
        state.withLock { $0.failure = failure }
    }

    /// Runs `hook` with the number of changes received so far, after each change is applied
    /// and before it is answered; nil removes it.
    func onChange(_ hook: (@Sendable (Int) -> Void)?) {
        state.withLock { $0.onChange = hook }
    }

    /// How long the target takes to answer each change: a slow target lets changes queue up in
    /// the outbox, so a grant and its revocation wait there together.
    func answer(after latency: Duration) {
        state.withLock { $0.latency = latency }
    }

    /// Starts serving, on `port` (its old port, after ``stop()``) or a free one.
    func start(port: Int = 0) async throws {
        let router = Router()
        router.put("/grants/:id") { request, context in try await self.change(.put, request, context) }
        router.delete("/grants/:id") { request, context in try await self.change(.delete, request, context) }
        router.post("/checkpoints") { request, _ in try await self.checkpoint(request) }
        router.get("/grants") { _, _ in self.state.withLock { $0.failure } == nil ? self.list() : Response(status: .internalServerError) }
        var logger = Logger(label: "recording-target")
        logger.logLevel = .critical
        let running = await RunningServer.start(logger: logger) { onServerRunning in
            Application(
                router: router,
                configuration: .init(address: .hostname("127.0.0.1", port: port), serverName: "recording-target"),
                onServerRunning: onServerRunning, logger: logger)
        }
        guard let running else { throw DaemonTestError("the recording target could not listen") }
        server.withLock { $0 = running }
        state.withLock { $0.port = running.port }
    }

    func stop() async {
        let running = server.withLock { running in
            defer { running = nil }
            return running
        }
        await running?.stop()
    }

    private func change(_ operation: Change.Operation, _ request: Request, _ context: BasicRequestContext) async throws -> Response {
        let body = Array(try await request.body.collect(upTo: 1 << 20).readableBytesView)
        let (latency, failure) = state.withLock { ($0.latency, $0.failure) }
        if latency > .zero { try await Task.sleep(for: latency) }
        let id = context.parameters.get("id") ?? ""
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.canonicalName] = field.value }
        let key = headers["idempotency-key"] ?? ""
        let valid = verify(
            headers["tether-signature"], method: request.method.rawValue, target: request.uri.string, idempotencyKey: key,
            body: body)
        var grant: String?
        if operation == .put {
            guard let object = try? JSONDecoder().decode([String: String].self, from: Data(body)), object["id"] == id,
                let subject = object["subject"], let agent = object["agent"], let scope = object["scope"], let resource = object["resource"]
            else { return Response(status: .badRequest) }
            grant = "\(subject) \(agent) \(scope) \(resource)"
        }
        let outboxID = key.split(separator: ":").last.flatMap { Int64($0) }
        let recorded = Change(
            operation: operation, grantID: id, outboxID: outboxID, idempotencyKey: key, signatureValid: valid, grant: grant)
        if let failure {
            state.withLock { $0.refused.append(recorded) }
            if case .hang(let duration) = failure { try? await Task.sleep(for: duration) }
            return Response(status: .internalServerError)
        }
        let (existed, count, hook) = state.withLock { state in
            state.changes.append(recorded)
            let existed: Bool
            if let grant {
                existed = state.grants.updateValue(grant, forKey: id) != nil
            } else {
                existed = state.grants.removeValue(forKey: id) != nil
            }
            return (existed, state.changes.count, state.onChange)
        }
        hook?(count)
        switch operation {
        case .put: return Response(status: existed ? .ok : .created)
        case .delete: return Response(status: existed ? .noContent : .notFound)
        }
    }

    private func checkpoint(_ request: Request) async throws -> Response {
        let body = Array(try await request.body.collect(upTo: 1 << 20).readableBytesView)
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.canonicalName] = field.value }
        let key = headers["idempotency-key"] ?? ""
        let valid = verify(headers["tether-signature"], method: "POST", target: request.uri.string, idempotencyKey: key, body: body)
        let received = Checkpoint(body: String(decoding: body, as: UTF8.self), idempotencyKey: key, signatureValid: valid)
        let failure = state.withLock { state in
            if state.failure == nil {
                state.checkpoints.append(received)
            } else {
                state.refusedCheckpoints.append(received)
            }
            return state.failure
        }
        guard let failure else { return Response(status: .noContent) }
        if case .hang(let duration) = failure { try? await Task.sleep(for: duration) }
        return Response(status: .internalServerError)
    }

    private func list() -> Response {
        let grants = state.withLock { $0.grants.values.sorted() }.map { line -> [String: String] in
            let parts = line.split(separator: " ", maxSplits: 3).map(String.init)
            return ["subject": parts[0], "agent": parts[1], "scope": parts[2], "resource": parts[3]]
        }
        let data = (try? JSONSerialization.data(withJSONObject: ["grants": grants])) ?? Data()
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// `t` within 5 minutes and a `v2` equal to HMAC-SHA256 of
    /// `"<t>\n<METHOD>\n<path>\n<Idempotency-Key>\n<body>"` (docs/targets.md).
    private func verify(_ header: String?, method: String, target: String, idempotencyKey: String, body: [UInt8]) -> Bool {
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
        let signed = Array("\(timestamp)\n\(method)\n\(target)\n\(idempotencyKey)\n".utf8) + body
        let expected = Signing.hex(HMAC<SHA256>.authenticationCode(for: signed, using: SymmetricKey(data: secret)))
        return macs.contains(expected)
    }
}

/// HMAC-SHA256 signatures in the `Tether-Signature` format (SPEC §8).
enum Signing {
    static func header(body: [UInt8], secret: String, at time: Date = Date()) -> String {
        let t = Int64(time.timeIntervalSince1970.rounded(.down))
        let mac = HMAC<SHA256>.authenticationCode(for: Array("\(t).".utf8) + body, using: SymmetricKey(data: Array(secret.utf8)))
        return "t=\(t),v1=\(hex(mac))"
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }
}
