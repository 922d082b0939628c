import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Synchronization
import TetherCore
import TetherEngine
import TetherHTTP
import TetherStore

/// A real engine over a real SQLite file in a temporary folder, with a clock tests move,
/// served by the real router.
struct Harness {
    static let start = Date(timeIntervalSince1970: 1_795_000_000)
    static let oldSecret = Array("old-secret-0a1b2c".utf8)
    static let newSecret = Array("new-secret-9z8y7x".utf8)
    static let token = "check-token-alpha"
    static let secondToken = "check-token-beta"

    let folder: URL
    let path: String
    let store: SQLiteStateStore
    let clock: ManualWallClock
    let engine: Engine
    let access: APIAccess
    let logs: LogRecorder
    let maxBodyBytes: Int
    let refusals: RefusalAuditBudget

    init(
        secrets: [[UInt8]]? = [Harness.oldSecret], tokens: [String]? = [Harness.token], maxBodyBytes: Int = 16_384,
        folder: URL? = nil, clock: ManualWallClock? = nil, safety: SafetyLimits = SafetyLimits(),
        refusals: RefusalAuditBudget = RefusalAuditBudget()
    ) async throws {
        self.refusals = refusals
        self.folder = folder ?? FileManager.default.temporaryDirectory.appendingPathComponent("tether-http-\(UUID().uuidString)")
        path = self.folder.appendingPathComponent("tether.db").path
        store = try SQLiteStateStore(path: path)
        self.clock = clock ?? ManualWallClock(Self.start)
        engine = Engine(
            store: store, configuration: EngineConfiguration(policySet: Fixtures.policySet, safety: safety), clock: self.clock)
        try await engine.loadIndex()
        access = APIAccess(
            hr: secrets.map { HRWebhookConfiguration(secrets: WebhookSecrets($0)!, tolerance: .seconds(300)) },
            checkTokens: tokens.flatMap(BearerTokens.init))
        logs = LogRecorder()
        self.maxBodyBytes = maxBodyBytes
    }

    /// The same store file opened again by a fresh store and engine, as after a restart.
    func restarted() async throws -> Harness {
        try await Harness(folder: folder, clock: clock)
    }

    var application: some ApplicationProtocol {
        let router = buildRouter(engine: engine, access: access, maxBodyBytes: maxBodyBytes, clock: clock, refusals: refusals)
        let recorder = logs
        var logger = Logger(label: "tether.http.test") { _ in recorder }
        logger.logLevel = .debug
        return Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)), logger: logger)
    }

    /// Seeds the sponsors jdoe (Support) and mkhan (People) through HR joiners, and
    /// reconciles so the autonomous ledger-bot receives its static grant.
    func seedSponsors() async throws {
        for (index, (user, department)) in [("jdoe", "Support"), ("mkhan", "People")].enumerated() {
            _ = try await engine.submit(
                LifecycleEvent(
                    id: "seed-\(user)", source: .hr, kind: .joiner, occurredAt: Self.start.addingTimeInterval(Double(index) - 100),
                    facts: IdentityFacts(
                        externalId: "E-\(user)", userName: user, email: "\(user)@example.com", department: department,
                        version: Timestamp.version(Self.start.addingTimeInterval(Double(index) - 100)))),
                actor: .hr)
        }
        try await engine.reconcile(origin: .other, actor: .policy)
    }

    func grantLines() async throws -> [String] {
        try await store.grants(subject: nil, agent: nil).map {
            "\($0.grant.subject) \($0.grant.agent) \($0.grant.scope) \($0.grant.resource)"
        }.sorted()
    }

    func auditRecords() async throws -> [AuditRecord] {
        try await store.auditRecords(AuditQuery())
    }
}

enum Fixtures {
    static let supportCopilot = Agent(id: "support-copilot", kind: .delegated, sponsor: "jdoe")
    static let ledgerBot = Agent(
        id: "ledger-bot", kind: .autonomous, sponsor: "mkhan",
        grants: [StaticGrant(scopes: ["ledger:read"], resource: "erp:ledger/*")])

    /// Support staff get the copilot on their department's queue: HR facts alone decide it.
    static let supportTickets = Policy(
        id: "support-tickets",
        when: .attribute(name: "department", test: .in(["Support", "Success"])),
        grant: [GrantTemplate(agent: "support-copilot", scopes: ["tickets:read", "tickets:write"], resource: "zendesk:queue/{department}")])

    static let policySet = PolicySet(agents: [supportCopilot, ledgerBot], policies: [supportTickets])
}

/// Builders of HR webhook bodies and signatures.
enum HR {
    /// A body as SPEC §8 shows it.
    static func body(
        id: String, type: String = "joiner", occurredAt: String = "2026-11-18T08:00:00Z", effectiveAt: String? = nil,
        userName: String = "alice", externalId: String? = "E1001", active: Bool? = nil, department: String = "Support",
        employeeNumber: String = "1001", manager: String? = "E1000"
    ) -> String {
        var user: [String: Any] = [
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            "userName": userName,
            "displayName": userName.capitalized,
            "title": "Support Engineer",
            "emails": [["value": "\(userName)@example.com", "type": "work", "primary": true], ["value": "\(userName)@home.example"]],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": [
                "employeeNumber": employeeNumber, "department": department, "costCenter": "CC-7",
            ].merging(manager.map { ["manager": ["value": $0]] } ?? [:]) { a, _ in a },
        ]
        if let externalId { user["externalId"] = externalId }
        if let active { user["active"] = active }
        var event: [String: Any] = ["id": id, "type": type, "occurredAt": occurredAt, "user": user]
        if let effectiveAt { event["effectiveAt"] = effectiveAt }
        let data = try! JSONSerialization.data(withJSONObject: event, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    static func headers(_ body: String, secrets: [[UInt8]] = [Harness.oldSecret], time: Date) -> HTTPFields {
        [WebhookSignature.headerName: WebhookSignature.header(body: Array(body.utf8), secrets: secrets, time: time),
         .contentType: "application/json"]
    }

    /// Posts `body` signed with `secrets` at `time` (the harness's now unless told).
    static func post(
        _ client: some TestClientProtocol, _ harness: Harness, _ body: String, secrets: [[UInt8]] = [Harness.oldSecret],
        time: Date? = nil, headers: HTTPFields? = nil
    ) async throws -> TestResponse {
        try await client.execute(
            uri: "/hooks/hr", method: .post, headers: headers ?? Self.headers(body, secrets: secrets, time: time ?? harness.clock.now()),
            body: ByteBuffer(string: body))
    }
}

enum Check {
    static func body(_ subject: String, _ agent: String, _ scope: String, _ resource: String) -> String {
        #"{"subject":"\#(subject)","agent":"\#(agent)","scope":"\#(scope)","resource":"\#(resource)"}"#
    }

    static func post(
        _ client: some TestClientProtocol, _ body: String, token: String? = Harness.token
    ) async throws -> TestResponse {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let token { headers[.authorization] = "Bearer \(token)" }
        return try await client.execute(uri: "/v1/check", method: .post, headers: headers, body: ByteBuffer(string: body))
    }

    static func post(
        _ client: some TestClientProtocol, _ subject: String, _ agent: String, _ scope: String, _ resource: String
    ) async throws -> TestResponse {
        try await post(client, body(subject, agent, scope, resource))
    }
}

extension TestResponse {
    /// The body as a JSON object.
    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView))) as? [String: Any] ?? [:]
    }

    var text: String { String(buffer: body) }

    /// An HR answer without its revision (SPEC §14), which must be there, in the JSON and the
    /// `Tether-Revision` header alike; `"missing revision"` when it is not.
    var answer: String {
        let text = self.text
        guard let range = text.range(of: #","revision":[0-9]+"#, options: .regularExpression),
            let header = headers[HTTPField.Name("Tether-Revision")!], text[range].hasSuffix(":" + header)
        else { return "missing revision in \(text)" }
        return text.replacingCharacters(in: range, with: "")
    }
}

/// Captures every log line in memory, so tests can read what the daemon would print.
final class LogRecorder: LogHandler, @unchecked Sendable {
    private let lines = Mutex<[String]>([])
    // One recorder is every logger's handler, and requests set metadata on their own
    // loggers concurrently: the metadata is guarded like the lines.
    private let storedMetadata = Mutex<Logger.Metadata>([:])
    var metadata: Logger.Metadata {
        get { storedMetadata.withLock { $0 } }
        set { storedMetadata.withLock { $0 = newValue } }
    }
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { storedMetadata.withLock { $0[key] } }
        set { storedMetadata.withLock { $0[key] = newValue } }
    }

    func log(event: LogEvent) {
        let all = metadata.merging(event.metadata ?? [:]) { _, new in new }
        let line = "\(event.level) \(event.message) " + all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        lines.withLock { $0.append(line) }
    }

    var all: [String] { lines.withLock { $0 } }
}
