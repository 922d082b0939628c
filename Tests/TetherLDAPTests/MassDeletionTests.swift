import Foundation
import Logging
import SlapdHarness
import TetherConfig
import TetherCore
import TetherEngine
import TetherLDAP
import TetherStore
import Testing

/// The issue's accident: half a directory deleted by one `ldapmodify` run reaches Tether as
/// single syncrepl deletions. The revocation window holds them past the budget.
@Suite("mass deletion through syncrepl")
struct MassDeletionTests {
    static let people = 40

    /// The lifecycle fixture (jdoe and alice in Support) and 40 more people in Support: one
    /// grant each.
    static var ldif: String {
        var text = Fixture.ldif + "\n"
        for index in 1...people {
            text += Fixture.person("p\(index)", ou: "eng", department: "Support", number: 2000 + index) + "\n"
        }
        return text
    }

    /// Grants before the deletions: the 40, jdoe and alice.
    static let granted = people + 2

    @Test("200 deletions in one ldapmodify, scaled down: held past the window's budget, grants in force")
    func deletionsStreamedBySyncreplAreHeldPastTheBudget() async throws {
        let slapd = try await Slapd.start(ldif: Self.ldif)
        defer { slapd.destroy() }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tether-mass-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let passwordFile = folder.appendingPathComponent("ldap.password").path
        try "\(Slapd.rootPassword)\n".write(toFile: passwordFile, atomically: true, encoding: .utf8)
        let store = try SQLiteStateStore(path: folder.appendingPathComponent("tether.db").path)
        let policy = Policy(
            id: "support", when: .attribute(name: "department", test: .in(["Support"])),
            grant: [GrantTemplate(agent: "support-copilot", scopes: ["tickets:read"], resource: "zendesk:queue/{department}")])
        let engine = Engine(
            store: store,
            configuration: EngineConfiguration(
                policySet: PolicySet(agents: [Agent(id: "support-copilot", kind: .delegated, sponsor: "jdoe")], policies: [policy]),
                safety: SafetyLimits(maxRevocationsPerRun: 10, maxRevocationRatio: 1, minGrantsForRatio: 1_000, window: 600)))
        let configuration = LDAPConfiguration(
            url: slapd.url, bindDN: Slapd.rootDN, bindPasswordFile: passwordFile,
            users: LDAPUsersConfiguration(base: Fixture.people), groups: LDAPGroupsConfiguration(base: Fixture.groups),
            changeDetection: .syncrepl, pollInterval: .milliseconds(200), fullScanInterval: .seconds(3_600),
            pageSize: 50, timeout: .seconds(15))
        let service = LDAPSourceService(
            configuration: configuration, engine: engine, store: store, logger: Logger(label: "tether.ldap.test"),
            tuning: LDAPSourceService.Tuning(initialBackoff: .milliseconds(100), maximumBackoff: .seconds(1)))
        let task = Task { try await service.run() }
        defer { task.cancel() }

        func eventually(_ what: String, _ condition: () async throws -> Bool) async throws {
            let deadline = ContinuousClock.now + .seconds(60)
            while ContinuousClock.now < deadline {
                if try await condition() { return }
                try await Task.sleep(for: .milliseconds(50))
            }
            Issue.record("timed out waiting for: \(what)")
            throw SlapdError("timed out waiting for \(what)")
        }
        try await eventually("every person granted") { try await store.grantCount() == Self.granted }

        // Half the people deleted by one ldapmodify run.
        let deleted = 1...(Self.people / 2)
        try slapd.modify(deleted.map { "dn: uid=p\($0),ou=eng,\(Fixture.people)\nchangetype: delete\n" }.joined(separator: "\n"))

        // Every deletion was taken: 10 applied, the other 10 wait in one held plan.
        try await eventually("the deletions past the budget held") {
            try await store.plans(status: .held).first?.plan.revocations == Self.people / 2 - 10
        }
        let held = try await store.plans(status: .held)
        #expect(held.count == 1)
        #expect(held.first?.plan.scope == .window(.ldap))
        #expect(try await store.grantCount() == Self.granted - 10)
        #expect(try await store.revocationWindow(.ldap)?.revocations == 10)
        #expect(try await store.identities(status: .terminated).count == 10)
        // Nothing else slips through while the plan waits.
        let audit = try await store.auditRecords(AuditQuery()).filter { $0.action == "grant.revoked" }
        #expect(audit.count == 10)

        // Approved: the rest is revoked.
        let outcome = try await engine.approve(planID: held[0].plan.id, actor: .operator("root"))
        guard case .applied = outcome else { Issue.record("expected applied, got \(outcome)"); return }
        #expect(try await store.grantCount() == Self.granted - Self.people / 2)
        #expect(try await store.identities(status: .terminated).count == Self.people / 2)
    }
}
