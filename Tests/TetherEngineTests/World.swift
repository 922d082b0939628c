import Foundation
import TetherCore
import TetherEngine
import TetherStore

/// A real engine over a real SQLite file in a temporary folder, with a clock tests move.
struct World {
    let folder: URL
    let store: SQLiteStateStore
    let clock: ManualWallClock
    let engine: Engine

    init(
        policySet: PolicySet = Fixtures.policySet,
        safety: SafetyLimits = SafetyLimits(maxRevocationsPerRun: 10_000, maxRevocationRatio: 1, minGrantsForRatio: 1_000_000),
        precedence: [Source] = [.hr, .scim, .ldap],
        targets: [String] = [], minSponsors: Int = 1
    ) throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("tether-test-\(UUID().uuidString)")
        store = try SQLiteStateStore(path: folder.appendingPathComponent("tether.db").path)
        // 2026-11-28T12:00:00Z: after every directory version the fixtures below state, which
        // would otherwise be versions from the future.
        clock = ManualWallClock(Date(timeIntervalSince1970: 1_795_867_200))
        engine = Engine(
            store: store,
            configuration: EngineConfiguration(
                policySet: policySet, lifecycle: Lifecycle(precedence: precedence), safety: safety, targets: targets,
                minSponsors: minSponsors, configurationFile: "/etc/tether/tether.yaml"),
            clock: clock)
    }

    /// The grants in the store as `subject agent scope resource` lines.
    func grantLines() async throws -> [String] {
        try await store.grants(subject: nil, agent: nil).map {
            "\($0.grant.subject) \($0.grant.agent) \($0.grant.scope) \($0.grant.resource)"
        }
    }

    func identity(_ userName: String) async throws -> Identity? {
        try await store.identity(userName: userName)
    }

    func auditActions() async throws -> [String] {
        try await store.auditRecords(AuditQuery()).map(\.action)
    }
}

/// Builders for source events, so tests read like the stories they tell.
enum Events {

    /// An LDAP record for `user`, keyed by entryUUID `uuid-<user>` unless told otherwise.
    static func ldap(
        _ user: String, version: Int, groups: Set<String> = [], department: String? = nil, title: String? = nil,
        status: IdentityStatus = .active, externalId: String? = nil, employeeNumber: String? = nil,
        manager: String? = nil, attributes: [String: [String]] = [:]
    ) -> IdentityFacts {
        IdentityFacts(
            externalId: externalId ?? "uuid-\(user)", userName: user, email: "\(user)@example.com",
            displayName: user.capitalized, employeeNumber: employeeNumber, department: department, title: title,
            manager: manager, status: status, groups: groups, attributes: attributes,
            version: String(format: "2026-11-28T10:00:%02d.000000Z", version))
    }

    static func ldapEvent(_ facts: IdentityFacts, id: String? = nil) -> LifecycleEvent {
        LifecycleEvent(
            id: id ?? "ldap:\(facts.externalId ?? "?"):\(facts.version)", source: .ldap, kind: .mover,
            occurredAt: Date(timeIntervalSince1970: 1_795_000_000), facts: facts, isExplicitLeaver: false)
    }

    /// An HR event about employee `employeeNumber`.
    static func hr(
        _ id: String, _ kind: EventKind, employeeNumber: String, userName: String? = nil, at second: Int,
        effectiveAt: Date? = nil, department: String? = nil
    ) -> LifecycleEvent {
        let occurredAt = Date(timeIntervalSince1970: 1_795_000_000 + Double(second))
        let status: IdentityStatus? =
            switch kind {
            case .leaver: .terminated
            case .joiner: .active
            case .mover: nil
            }
        return LifecycleEvent(
            id: id, source: .hr, kind: kind, occurredAt: occurredAt, effectiveAt: effectiveAt,
            facts: IdentityFacts(
                externalId: "E\(employeeNumber)", userName: userName, employeeNumber: employeeNumber,
                department: department, status: status, version: Timestamp.version(occurredAt)))
    }
}

enum Fixtures {
    static let supportCopilot = Agent(id: "support-copilot", kind: .delegated, sponsor: "jdoe")
    static let ledgerBot = Agent(
        id: "ledger-bot", kind: .autonomous, sponsor: "mkhan",
        grants: [StaticGrant(scopes: ["ledger:read"], resource: "erp:ledger/*")])
    static let hrAssistant = Agent(
        id: "hr-assistant", kind: .delegated, sponsor: "mkhan", onSponsorLeave: .transferToManager)

    static let supportTickets = Policy(
        id: "support-tickets",
        when: .all([.memberOf("support"), .attribute(name: "department", test: .in(["Support", "Success"]))]),
        grant: [GrantTemplate(agent: "support-copilot", scopes: ["tickets:read", "tickets:write"], resource: "zendesk:queue/{department}")])
    static let hrRecords = Policy(
        id: "hr-records",
        when: .attribute(name: "title", test: .prefix("HR ")),
        grant: [GrantTemplate(agent: "hr-assistant", scopes: ["records:read"], resource: "workday:org/{department}")])

    static let policySet = PolicySet(agents: [supportCopilot, ledgerBot, hrAssistant], policies: [supportTickets, hrRecords])
}

extension World {
    /// Seeds the sponsors jdoe (support) and mkhan (HR, managed by boss), and boss.
    func seedSponsors() async throws {
        _ = try await engine.submit(Events.ldapEvent(Events.ldap("boss", version: 1, department: "Exec")))
        _ = try await engine.submit(Events.ldapEvent(Events.ldap("jdoe", version: 1, department: "Support")))
        _ = try await engine.submit(Events.ldapEvent(Events.ldap(
            "mkhan", version: 1, department: "People", title: "HR Partner", manager: "uuid-boss")))
        try await engine.reconcile(origin: .other, actor: .policy)
    }
}
