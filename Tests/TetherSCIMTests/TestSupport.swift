import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import Testing
import TetherCore
import TetherEngine
import TetherSCIM
import TetherStore

/// A real SQLite store in a temporary folder, a real engine with a small policy set, and the
/// SCIM controller mounted on a Hummingbird router.
///
/// Policy: members of the SCIM group `support` in department Support or Success get
/// `tickets:read` and `tickets:write` on `zendesk:queue/{department}` through the delegated
/// agent `support-copilot`, whose sponsor is `jdoe`.
struct World {
    static let token = "test-token-0123456789abcdef"
    static let policySet = PolicySet(
        agents: [Agent(id: "support-copilot", kind: .delegated, sponsor: "jdoe")],
        policies: [
            Policy(
                id: "support-tickets",
                when: .all([.memberOf("support"), .attribute(name: "department", test: .in(["Support", "Success"]))]),
                grant: [GrantTemplate(agent: "support-copilot", scopes: ["tickets:read", "tickets:write"], resource: "zendesk:queue/{department}")])
        ])

    let folder: URL
    let store: SQLiteStateStore
    let engine: Engine
    let clock: ManualWallClock
    let controller: SCIMController<SQLiteStateStore>
    let logs: LogCapture

    init(
        maxBodyBytes: Int = 64 * 1024, maxResults: Int = 1000, baseURL: String? = nil, policySet: PolicySet = Self.policySet,
        minSponsors: Int = 1
    ) throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("tether-scim-\(UUID().uuidString)")
        store = try SQLiteStateStore(path: folder.appendingPathComponent("tether.db").path)
        clock = ManualWallClock(Date(timeIntervalSince1970: 1_795_000_000))
        engine = Engine(store: store, configuration: EngineConfiguration(policySet: policySet, minSponsors: minSponsors, configurationFile: "/etc/tether/tether.yaml"),
            clock: clock)
        logs = LogCapture()
        let capture = logs
        var logger = Logger(label: "scim-test") { _ in capture }
        logger.logLevel = .debug
        controller = SCIMController(
            store: store, engine: engine,
            configuration: SCIMControllerConfiguration(
                bearerTokens: [Self.token], maxBodyBytes: maxBodyBytes, baseURL: baseURL, maxResults: maxResults),
            clock: clock, logger: logger)
    }

    /// The application serving the SCIM routes, on a free loopback port when run live.
    func application() -> some ApplicationProtocol {
        let router = Router()
        controller.addRoutes(to: router.group())
        return Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            logger: Logger(label: "scim-test-server") { _ in SwiftLogNoOpLogHandler() })
    }

    func remove() { try? FileManager.default.removeItem(at: folder) }

    /// Runs `test` against the in-process router, then deletes the store.
    func withRouter(_ test: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        defer { remove() }
        try await engine.loadIndex()
        try await application().test(.router) { client in try await test(client) }
    }

    /// Runs `test` against a live server on a loopback socket, then deletes the store.
    func withLiveServer(_ test: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        defer { remove() }
        try await engine.loadIndex()
        try await application().test(.live) { client in try await test(client) }
    }

    /// The grants a subject holds in the store.
    func grants(of subject: String) async throws -> [String] {
        try await store.grants(subject: subject, agent: nil).map { "\($0.grant.scope) \($0.grant.resource)" }.sorted()
    }
}

/// Captures log lines in memory so tests can check that no secret is ever written.
final class LogCapture: LogHandler, @unchecked Sendable {
    private let lock = NSLock()
    private var _lines: [String] = []
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    var lines: [String] { lock.withLock { _lines } }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let fields = (event.metadata ?? [:]).map { "\($0.key)=\($0.value)" }.sorted().joined(separator: " ")
        lock.withLock { _lines.append("\(event.level) \(event.message) \(fields)") }
    }
}

/// A parsed response.
struct Reply: Sendable {
    let status: Int
    let headers: HTTPFields
    let json: SCIMJSON?
    let text: String

    subscript(_ name: String) -> SCIMJSON? { json?[name] }
    var scimType: String? { json?["scimType"]?.stringValue }
    var id: String? { json?["id"]?.stringValue }
    var etag: String? { headers[.eTag] }
    var contentType: String? { headers[.contentType] }
    var resources: [SCIMJSON] { json?["Resources"]?.arrayValue ?? [] }
    var totalResults: Int64? {
        if case .integer(let n)? = json?["totalResults"] { return n }
        return nil
    }
}

extension TestClientProtocol {
    /// Sends a SCIM request with the test token (unless `token` says otherwise).
    @discardableResult
    func scim(
        _ method: HTTPRequest.Method, _ path: String, _ body: String? = nil, token: String? = World.token,
        headers extra: HTTPFields = [:]
    ) async throws -> Reply {
        var headers = extra
        if let token { headers[.authorization] = "Bearer \(token)" }
        if body != nil { headers[.contentType] = "application/scim+json" }
        let uri = path.hasPrefix("/") ? path : "/scim/v2/\(path)"
        return try await execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) { response in
            let text = String(buffer: response.body)
            return Reply(
                status: Int(response.status.code), headers: response.headers, json: try? SCIMJSON.parse(text), text: text)
        }
    }

    /// Creates a User and returns the reply (expects 201).
    func createUser(_ userName: String, extra: String = "") async throws -> Reply {
        let reply = try await scim(
            .post, "Users",
            #"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"\#(userName)"\#(extra)}"#)
        #expect(reply.status == 201, "\(reply.text)")
        return reply
    }

    /// Creates a Group with members and returns the reply (expects 201).
    func createGroup(_ displayName: String, members: [String] = []) async throws -> Reply {
        let list = members.map { #"{"value":"\#($0)"}"# }.joined(separator: ",")
        let reply = try await scim(
            .post, "Groups",
            #"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"\#(displayName)","members":[\#(list)]}"#)
        #expect(reply.status == 201, "\(reply.text)")
        return reply
    }

    func patch(_ path: String, _ operations: String, headers: HTTPFields = [:]) async throws -> Reply {
        try await scim(
            .patch, path, #"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":\#(operations)}"#,
            headers: headers)
    }
}

/// A User in department Support, so that membership of `support` grants it tickets.
let supportUser = #","active":true,"emails":[{"value":"alice@example.com","type":"work","primary":true}],"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Support","employeeNumber":"1001"}"#
