import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import SlapdHarness
import TetherCore
import TetherStore

/// The real daemon fed by every source at once: a real slapd followed by syncrepl, SCIM with a
/// token file, the HR webhook with a secret file, and one HTTP target that records what it
/// receives. The test talks to each over its real protocol.
final class SourcesWorld: @unchecked Sendable {
    static let people = "ou=people,dc=example,dc=com"
    static let groups = "ou=groups,dc=example,dc=com"
    static let groupNames = ["support", "engineering"]
    static let departments = ["Support", "Sales", "Finance"]
    static let scimToken = "scim-token-\(UUID().uuidString)"
    static let hrSecret = "hr-secret-\(UUID().uuidString)"
    static let targetSecret = "target-secret-\(UUID().uuidString)"

    /// The policies of every test here; ``Person/grants`` computes the same thing.
    static let policies = """
        agents:
          - { id: support-copilot, kind: delegated, sponsor: jdoe }
        policies:
          - id: support-tickets
            when: { memberOf: support }
            grant: [ { agent: support-copilot, scopes: [tickets:read], resource: "zendesk:queue/{department}" } ]
          - id: engineering-repos
            when: { memberOf: engineering }
            grant: [ { agent: support-copilot, scopes: [repo:read], resource: "git:{userName}" } ]
          - id: support-desk
            when: { attribute: { name: department, in: [Support] } }
            grant: [ { agent: support-copilot, scopes: [desk:read], resource: "desk:{userName}" } ]
          - id: sales-crm
            when: { attribute: { name: department, in: [Sales] } }
            grant: [ { agent: support-copilot, scopes: [crm:read], resource: "crm:{userName}" } ]
        """

    let slapd: Slapd
    let target: RecordingTarget
    let daemon: DaemonProcess
    private(set) var store: SQLiteStateStore!

    /// Starts slapd with `people` (plus the sponsor jdoe), the recording target and the daemon,
    /// and waits until the daemon is ready.
    init(
        people: [Person], fullScanInterval: String = "15m", pageSize: Int = 50,
        safety: String = "{ maxRevocationsPerRun: 100000, maxRevocationRatio: 1.0, minGrantsForRatio: 1000000 }",
        slapd options: Slapd.Options = Slapd.Options(), ldapMapping: String? = nil, changeDetection: String = "syncrepl",
        environment: [String: String] = [:]
    ) async throws {
        slapd = try await Slapd.start(ldif: Self.ldif(people: [Self.sponsor] + people), options: options)
        target = RecordingTarget(secret: Self.targetSecret)
        try await target.start()
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tether-sources-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        for (file, text) in [
            ("ldap.password", Slapd.rootPassword), ("scim.token", Self.scimToken), ("hr.secret", Self.hrSecret),
            ("target.secret", Self.targetSecret),
        ] {
            try text.write(to: folder.appendingPathComponent(file), atomically: true, encoding: .utf8)
        }
        let config = """
            sources:
              ldap:
                url: \(slapd.url)
                bindDN: "\(Slapd.rootDN)"
                bindPasswordFile: ldap.password
                users: { base: "\(Self.people)" }
                groups: { base: "\(Self.groups)" }
                suspendWhen: { attribute: { name: pwdAccountLockedTime, present: true } }
                \(ldapMapping.map { "mapping: \($0)" } ?? "")
                changeDetection: \(changeDetection)
                fullScanInterval: \(fullScanInterval)
                pageSize: \(pageSize)
                timeout: 10s
              scim: { tokenFile: scim.token }
              hr: { secretFiles: [hr.secret] }
            safety: \(safety)
            targets:
              - { id: gateway, type: http, url: "\(target.url)", secretFile: target.secret, orphans: revoke, timeout: 5s }
            \(Self.policies)
            """
        daemon = try DaemonProcess(config: config, folder: folder, environment: environment)
        try await daemon.waitUntilReady()
        store = try SQLiteStateStore(path: folder.appendingPathComponent("state/tether.db").path)
    }

    func stop() async {
        await daemon.stopAndWait()
        await target.stop()
        let slapd = slapd
        _ = try? await offPool { slapd.destroy() }
    }

    /// Applies `ldif` with ldapmodify, on a thread of its own.
    func modifyDirectory(_ ldif: String) async throws {
        let slapd = slapd
        try await offPool { try slapd.modify(ldif) }
    }

    /// Kills slapd (SIGKILL) and reaps it, on a thread of its own.
    func killDirectory() async {
        let slapd = slapd
        _ = try? await offPool { slapd.kill() }
    }

    // MARK: The directory

    /// The agent's sponsor: always active, in both groups.
    static let sponsor = Person(userName: "jdoe", source: .ldap, number: 1, department: "Support", groups: Set(groupNames))

    static func dn(_ uid: String) -> String { "uid=\(uid),\(people)" }

    static func entry(_ person: Person) -> String {
        """
        dn: \(dn(person.userName))
        objectClass: inetOrgPerson
        uid: \(person.userName)
        cn: \(person.userName)
        sn: \(person.userName)
        mail: \(person.userName)@example.com
        employeeNumber: \(person.number)
        departmentNumber: \(person.department)

        """
    }

    static func ldif(people: [Person]) -> String {
        var text = """
            dn: dc=example,dc=com
            objectClass: dcObject
            objectClass: organization
            o: Example
            dc: example

            dn: \(Self.people)
            objectClass: organizationalUnit
            ou: people

            dn: \(groups)
            objectClass: organizationalUnit
            ou: groups


            """
        for person in people { text += entry(person) + "\n" }
        for group in groupNames {
            text += "dn: cn=\(group),\(groups)\nobjectClass: groupOfNames\ncn: \(group)\n"
            for person in people where person.groups.contains(group) { text += "member: \(dn(person.userName))\n" }
            text += "\n"
        }
        return text
    }

    // MARK: Looking

    /// The store's grants as `subject agent scope resource`.
    func storedGrants() async throws -> [String: String] {
        var grants: [String: String] = [:]
        for stored in try await store.grants(subject: nil, agent: nil) {
            let grant = stored.grant
            grants[stored.id] = "\(grant.subject) \(grant.agent) \(grant.scope) \(grant.resource)"
        }
        return grants
    }

    func auditActions(_ action: String) async throws -> [AuditRecord] {
        try await store.auditRecords(AuditQuery()).filter { $0.action == action }
    }

    /// `tether status --json`, decoded.
    func status() async throws -> [String: Any] {
        let result = try await daemon.cli(["status", "--json"])
        return OperatorCLITests.json(result.stdout) as? [String: Any] ?? [:]
    }

    /// The LDAP source's row of `tether status --json`.
    func ldapStatus() async throws -> [String: Any] {
        ((try await status()["sources"] as? [String: Any])?["ldap"] as? [String: Any]) ?? [:]
    }

    /// `tether plan --json`'s steps: empty when the grants equal the desired state.
    func planSteps() async throws -> [Any]? {
        let planned = try await daemon.cli(["plan", "--json"])
        return (OperatorCLITests.json(planned.stdout) as? [String: Any])?["steps"] as? [Any]
    }

    /// The violations of "no grant delivered as granted after its revocation": a `PUT` that
    /// reached the target after a `DELETE` of the same grant committed later than it (a larger
    /// outbox row id). A `PUT` committed after the revocation is a legitimate re-grant.
    func deliveredAfterRevocation() -> [String] {
        var latestDelete: [String: Int64] = [:]
        var violations: [String] = []
        for change in target.changes {
            guard let id = change.outboxID else {
                violations.append("\(change): no outbox id in its Idempotency-Key")
                continue
            }
            switch change.operation {
            case .delete:
                latestDelete[change.grantID] = max(latestDelete[change.grantID] ?? 0, id)
            case .put:
                if let deleted = latestDelete[change.grantID], id < deleted {
                    violations.append("\(change) arrived after the revocation in outbox row \(deleted)")
                }
            }
        }
        return violations
    }
}

/// A person as the test expects Tether to know them, and the grants policy gives them.
struct Person: Sendable, Equatable, CustomStringConvertible {
    enum Origin: String, Sendable { case ldap, scim, hr }
    enum Status: String, Sendable { case absent, active, suspended, terminated }

    var userName: String
    var origin: Origin
    var number: Int
    var department: String
    /// LDAP groups (cn); empty for SCIM and HR people.
    var groups: Set<String> = []
    var status: Status = .active
    /// The SCIM resource id, once known.
    var scimID: String?
    /// What the test did to this person, for the message when a check fails.
    var history: [String] = []

    init(userName: String, source: Origin, number: Int, department: String, groups: Set<String> = [], status: Status = .active) {
        self.userName = userName
        self.origin = source
        self.number = number
        self.department = department
        self.groups = groups
        self.status = status
    }

    /// The grants SourcesWorld.policies give this person, as `subject agent scope resource`.
    var grants: Set<String> {
        guard status == .active else { return [] }
        var grants: Set<String> = []
        if groups.contains("support") { grants.insert("\(userName) support-copilot tickets:read zendesk:queue/\(department)") }
        if groups.contains("engineering") { grants.insert("\(userName) support-copilot repo:read git:\(userName)") }
        if department == "Support" { grants.insert("\(userName) support-copilot desk:read desk:\(userName)") }
        if department == "Sales" { grants.insert("\(userName) support-copilot crm:read crm:\(userName)") }
        return grants
    }

    func withStatus(_ status: Status) -> Person {
        var person = self
        person.status = status
        return person
    }

    /// Whether the store's identity matches this person's status and department.
    func matches(_ identity: Identity?) -> Bool {
        // A person added and deleted while the daemon was down was never seen: nothing to know.
        guard let identity else { return status == .absent || (status == .terminated && origin == .ldap) }
        switch (status, identity.status) {
        case (.active, .active), (.suspended, .suspended), (.terminated, .terminated): break
        default: return false
        }
        return status == .terminated || identity.department == department
    }

    var description: String { "\(userName)[\(origin.rawValue) \(status.rawValue) \(department) \(groups.sorted())]" }
}

/// SCIM and HR webhook requests to the daemon's public listener.
struct PushClient: Sendable {
    let port: Int

    struct Answer: Sendable {
        var status: Int
        var body: [String: Any] { (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] ?? [:] }
        var data: Data
    }

    /// A fresh session per client: no pooled connection outlives a killed daemon.
    private static func session() -> URLSession {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = 15
        return URLSession(configuration: configuration)
    }

    func send(_ method: String, _ path: String, body: Data? = nil, headers: [String: String]) async throws -> Answer {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        request.httpMethod = method
        request.httpBody = body
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let session = Self.session()
        defer { session.finishTasksAndInvalidate() }
        let (data, response) = try await session.data(for: request)
        return Answer(status: (response as? HTTPURLResponse)?.statusCode ?? 0, data: data)
    }

    func scim(_ method: String, _ path: String, _ object: [String: Any]? = nil) async throws -> Answer {
        let body = try object.map { try JSONSerialization.data(withJSONObject: $0, options: [.sortedKeys]) }
        return try await send(
            method, "/scim/v2\(path)", body: body,
            headers: ["Authorization": "Bearer \(SourcesWorld.scimToken)", "Content-Type": "application/scim+json"])
    }

    func hr(_ line: String) async throws -> Answer {
        let body = Array(line.utf8)
        return try await send(
            "POST", "/hooks/hr", body: Data(body),
            headers: ["Tether-Signature": Signing.header(body: body, secret: SourcesWorld.hrSecret), "Content-Type": "application/json"])
    }

    static let enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

    static func scimUser(_ person: Person) -> [String: Any] {
        [
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", enterprise],
            "userName": person.userName, "externalId": "X\(person.number)", "active": person.status == .active,
            "emails": [["value": "\(person.userName)@example.com", "primary": true]],
            enterprise: ["employeeNumber": "\(person.number)", "department": person.department],
        ]
    }

    static func patch(_ operations: [[String: Any]]) -> [String: Any] {
        ["schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": operations]
    }
}
