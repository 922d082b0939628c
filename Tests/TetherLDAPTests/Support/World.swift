import Foundation
import Logging
import SlapdHarness
import TetherConfig
import TetherCore
import TetherEngine
import TetherLDAP
import TetherStore
import Testing

/// The directory every scenario starts from: two sponsors, people in two OUs, a flat group,
/// a nested pair, a membership cycle and a posixGroup.
enum Fixture {
    static let people = "ou=people,dc=example,dc=com"
    static let groups = "ou=groups,dc=example,dc=com"

    static func person(
        _ uid: String, ou: String, department: String, number: Int, manager: String? = nil, extra: String = ""
    ) -> String {
        """
        dn: uid=\(uid),ou=\(ou),\(people)
        objectClass: inetOrgPerson
        uid: \(uid)
        cn: \(uid.capitalized) Example
        sn: Example
        mail: \(uid)@example.com
        employeeNumber: \(number)
        departmentNumber: \(department)
        title: Staff
        businessCategory: CC-\(number)
        \(manager.map { "manager: uid=\($0),ou=eng,\(people)\n" } ?? "")\(extra)
        """
    }

    static let ldif = """
        dn: dc=example,dc=com
        objectClass: dcObject
        objectClass: organization
        o: Example
        dc: example

        dn: \(people)
        objectClass: organizationalUnit
        ou: people

        dn: ou=eng,\(people)
        objectClass: organizationalUnit
        ou: eng

        dn: ou=sales,\(people)
        objectClass: organizationalUnit
        ou: sales

        dn: \(groups)
        objectClass: organizationalUnit
        ou: groups

        dn: ou=empty,dc=example,dc=com
        objectClass: organizationalUnit
        ou: empty

        \(person("jdoe", ou: "eng", department: "Support", number: 1001))
        \(person("mkhan", ou: "eng", department: "Finance", number: 1002))
        \(person("alice", ou: "sales", department: "Support", number: 1003, manager: "jdoe"))
        \(person("bob", ou: "sales", department: "Success", number: 1004, manager: "jdoe"))
        \(person("carol", ou: "eng", department: "Engineering", number: 1005))
        \(person("dave", ou: "eng", department: "Engineering", number: 1006))
        dn: cn=support,\(groups)
        objectClass: groupOfNames
        cn: support
        member: uid=jdoe,ou=eng,\(people)
        member: uid=alice,ou=sales,\(people)

        dn: cn=engineering,\(groups)
        objectClass: groupOfNames
        cn: engineering
        member: cn=platform,\(groups)

        dn: cn=platform,\(groups)
        objectClass: groupOfNames
        cn: platform
        member: uid=carol,ou=eng,\(people)

        dn: cn=loop-a,\(groups)
        objectClass: groupOfNames
        cn: loop-a
        member: cn=loop-b,\(groups)
        member: uid=dave,ou=eng,\(people)

        dn: cn=loop-b,\(groups)
        objectClass: groupOfNames
        cn: loop-b
        member: cn=loop-a,\(groups)

        dn: cn=ops,\(groups)
        objectClass: posixGroup
        cn: ops
        gidNumber: 5000
        memberUid: bob

        """

    static let agents = [
        Agent(id: "support-copilot", kind: .delegated, sponsor: "jdoe"),
        Agent(
            id: "ledger-bot", kind: .autonomous, sponsor: "mkhan",
            grants: [StaticGrant(scopes: ["ledger:read"], resource: "erp:ledger/*")]),
    ]

    static let policies = [
        Policy(
            id: "support-tickets",
            when: .all([.memberOf("support"), .attribute(name: "department", test: .in(["Support", "Success"]))]),
            grant: [GrantTemplate(agent: "support-copilot", scopes: ["tickets:read"], resource: "zendesk:queue/{department}")]),
        Policy(
            id: "engineering-repos", when: .memberOf("cn=engineering,ou=groups,dc=example,dc=com"),
            grant: [GrantTemplate(agent: "support-copilot", scopes: ["repo:read"], resource: "git:{userName}")]),
        Policy(
            id: "loops", when: .memberOf("loop-b"),
            grant: [GrantTemplate(agent: "support-copilot", scopes: ["loop:read"], resource: "loop:{userName}")]),
        Policy(
            id: "ops", when: .memberOf("ops"),
            grant: [GrantTemplate(agent: "support-copilot", scopes: ["ops:read"], resource: "ops:{userName}")]),
    ]

    /// The grants the fixture directory should produce, as `subject agent scope resource`.
    static let initialGrants: Set<String> = [
        "jdoe support-copilot tickets:read zendesk:queue/Support",
        "alice support-copilot tickets:read zendesk:queue/Support",
        "carol support-copilot repo:read git:carol",
        "dave support-copilot loop:read loop:dave",
        "bob support-copilot ops:read ops:bob",
        "agent:ledger-bot ledger-bot ledger:read erp:ledger/*",
    ]
}

/// Records the events an LDAP source reports.
final class EventLog: @unchecked Sendable {
    private let lock = NSLock()
    private var events: [LDAPSourceEvent] = []

    func record(_ event: LDAPSourceEvent) {
        if ProcessInfo.processInfo.environment["TETHER_TEST_LOG"] != nil { print("event:", event) }
        lock.withLock { events.append(event) }
    }
    var all: [LDAPSourceEvent] { lock.withLock { events } }
    func clear() { lock.withLock { events.removeAll() } }
}

/// A store, an engine and an LDAP source over a temporary folder: the daemon, minus HTTP.
final class World: @unchecked Sendable {
    let folder: URL
    private(set) var store: SQLiteStateStore
    private(set) var engine: Engine
    let events = EventLog()
    var configuration: LDAPConfiguration
    var tuning = LDAPSourceService.Tuning(initialBackoff: .milliseconds(100), maximumBackoff: .seconds(1))
    private var task: Task<Void, Error>?
    private(set) var service: LDAPSourceService?
    let logger: Logger
    /// The engine's safety gates, kept across ``restart()``.
    let safety: SafetyLimits

    convenience init(
        slapd: Slapd, changeDetection: LDAPChangeDetection, pageSize: Int = 2, safety: SafetyLimits = SafetyLimits()
    ) throws {
        try self.init(
            url: slapd.url, bindDN: Slapd.rootDN, password: Slapd.rootPassword, changeDetection: changeDetection,
            pageSize: pageSize, safety: safety)
    }

    init(
        url: String, bindDN: String, password: String, changeDetection: LDAPChangeDetection, pageSize: Int = 2,
        safety: SafetyLimits = SafetyLimits()
    ) throws {
        self.safety = safety
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("tether-ldap-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let passwordFile = folder.appendingPathComponent("ldap.password").path
        try "\(password)\n".write(toFile: passwordFile, atomically: true, encoding: .utf8)
        configuration = LDAPConfiguration(
            url: url, bindDN: bindDN, bindPasswordFile: passwordFile,
            users: LDAPUsersConfiguration(base: Fixture.people),
            groups: LDAPGroupsConfiguration(
                base: Fixture.groups,
                filter: "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup))"),
            attributes: ["costCenter": "businessCategory"],
            suspendWhen: LDAPSuspendConfiguration(attribute: "pwdAccountLockedTime", test: .present(true)),
            changeDetection: changeDetection, pollInterval: .milliseconds(200), fullScanInterval: .seconds(1),
            pageSize: pageSize, timeout: .seconds(15))
        var logger = Logger(label: "tether.ldap.test")
        logger.logLevel = ProcessInfo.processInfo.environment["TETHER_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
        self.logger = logger
        (store, engine) = try Self.open(folder, safety: safety)
    }

    private static func open(_ folder: URL, safety: SafetyLimits) throws -> (SQLiteStateStore, Engine) {
        let store = try SQLiteStateStore(path: folder.appendingPathComponent("tether.db").path)
        let engine = Engine(
            store: store,
            configuration: EngineConfiguration(
                policySet: PolicySet(agents: Fixture.agents, policies: Fixture.policies), safety: safety))
        return (store, engine)
    }

    /// Starts the LDAP source in a task of its own.
    func start() {
        let service = LDAPSourceService(
            configuration: configuration, engine: engine, store: store, logger: logger, tuning: tuning,
            observer: { [events] in events.record($0) })
        self.service = service
        task = Task { try await service.run() }
    }

    /// Cancels the LDAP source and waits for it to end.
    func stop() async {
        task?.cancel()
        _ = await task?.result
        task = nil
    }

    /// Stops the source and opens the store and engine again: a daemon restart.
    func restart() async throws {
        await stop()
        (store, engine) = try Self.open(folder, safety: safety)
        start()
    }

    deinit {
        task?.cancel()
        try? FileManager.default.removeItem(at: folder)
    }

    // MARK: Looking

    /// The grants in the store, as `subject agent scope resource`.
    func grants() async throws -> Set<String> {
        Set(try await store.grants(subject: nil, agent: nil).map {
            "\($0.grant.subject) \($0.grant.agent) \($0.grant.scope) \($0.grant.resource)"
        })
    }

    func identity(_ userName: String) async throws -> Identity? {
        try await store.identity(userName: userName)
    }

    func audit(_ action: String) async throws -> [AuditRecord] {
        try await store.auditRecords(AuditQuery()).filter { $0.action == action }
    }

    /// Polls `condition` every 50 ms until it holds or `timeout` passes (then fails the test).
    func eventually(
        _ what: String, timeout: Duration = .seconds(60), sourceLocation: SourceLocation = #_sourceLocation,
        _ condition: () async throws -> Bool
    ) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("timed out after \(timeout) waiting for: \(what); grants: \(try await grants().sorted())", sourceLocation: sourceLocation)
        throw SlapdError("timed out waiting for \(what)")
    }

    /// Waits until the store holds exactly `expected` grants.
    func waitForGrants(_ expected: Set<String>, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        try await eventually(what, sourceLocation: sourceLocation) { try await grants() == expected }
    }
}
