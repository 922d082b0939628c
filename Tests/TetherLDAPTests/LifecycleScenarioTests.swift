import Foundation
import SlapdHarness
import TetherConfig
import TetherCore
import TetherLDAP
import Testing

/// Joiners, movers and leavers through a real slapd, the engine and the SQLite store:
/// once following changes with syncrepl (syncprov and memberof loaded), once by polling
/// (no syncprov).
@Suite("LDAP lifecycle through a real slapd")
struct LifecycleScenarioTests {
    @Test("syncrepl: groups, departments, locks, renames, moves, nesting, deletions, sponsors")
    func syncrepl() async throws {
        try await runScenario(syncprov: true, detection: .auto, expectedMode: "syncrepl")
    }

    @Test("poll: the same lifecycle on a server without syncprov")
    func poll() async throws {
        try await runScenario(syncprov: false, detection: .auto, expectedMode: "poll")
    }

    private func runScenario(syncprov: Bool, detection: LDAPChangeDetection, expectedMode: String) async throws {
        let slapd = try await Slapd.start(ldif: Fixture.ldif, options: Slapd.Options(syncprov: syncprov))
        defer { slapd.destroy() }
        let world = try World(slapd: slapd, changeDetection: detection)
        world.start()

        // Joiners: the whole directory, nested groups, a cycle and a posixGroup.
        var steps = LifecycleSteps(world: world, directory: slapd)
        try await steps.initialGrants()
        #expect(world.events.all.contains(.connected(mode: expectedMode)))
        let carol = try #require(try await world.identity("carol"))
        #expect(carol.groups.contains("engineering") && carol.groups.contains("cn=engineering,ou=groups,dc=example,dc=com"))
        #expect(carol.attributes["costCenter"] == ["CC-1005"])
        let alice = try #require(try await world.identity("alice"))
        let jdoe = try #require(try await world.identity("jdoe"))
        #expect(alice.manager == jdoe.id)
        #expect(try await world.store.sourceState(.ldap)?.mode == expectedMode)

        // Add a person to a group: grant.
        try await steps.bobJoinsSupport()

        // Remove a person from a group: revoke.
        try slapd.modify("""
            dn: cn=support,\(Fixture.groups)
            changetype: modify
            delete: member
            member: uid=alice,ou=sales,\(Fixture.people)
            """)
        steps.grants.remove("alice support-copilot tickets:read zendesk:queue/Support")
        try await world.waitForGrants(steps.grants, "alice leaves support")

        // Change the department: the resource template follows.
        try await steps.jdoeMovesDepartment()

        // Lock (suspendWhen pwdAccountLockedTime present): suspended, grants revoked; unlock restores.
        try slapd.modify("""
            dn: uid=carol,ou=eng,\(Fixture.people)
            changetype: modify
            replace: pwdAccountLockedTime
            pwdAccountLockedTime: 000001010000Z
            """)
        steps.grants.remove("carol support-copilot repo:read git:carol")
        try await world.waitForGrants(steps.grants, "carol locked")
        #expect(try await world.identity("carol")?.status == .suspended)
        try slapd.modify("""
            dn: uid=carol,ou=eng,\(Fixture.people)
            changetype: modify
            delete: pwdAccountLockedTime
            """)
        steps.grants.insert("carol support-copilot repo:read git:carol")
        try await world.waitForGrants(steps.grants, "carol unlocked")
        #expect(try await world.identity("carol")?.status == .active)

        // A rename (modrdn) and a move to another OU: the same identity, grants kept.
        let revokedBefore = try await world.audit("grant.revoked").count
        try slapd.modify("""
            dn: uid=carol,ou=eng,\(Fixture.people)
            changetype: modrdn
            newrdn: cn=Carol Jones
            deleteoldrdn: 0

            dn: uid=jdoe,ou=eng,\(Fixture.people)
            changetype: modrdn
            newrdn: uid=jdoe
            deleteoldrdn: 1
            newsuperior: ou=sales,\(Fixture.people)
            """)
        // refint rewrites the member DNs; then a sentinel change on each search shows that
        // everything before it in the stream was applied.
        try await world.eventually("refint rewrote the member DNs") {
            let support = try Slapd.run(
                "/usr/bin/ldapsearch",
                ["-x", "-H", slapd.url, "-b", "cn=support,\(Fixture.groups)", "-s", "base", "-LLL", "member"])
            return support.contains("uid=jdoe,ou=sales")
        }
        try slapd.modify("""
            dn: uid=dave,ou=eng,\(Fixture.people)
            changetype: modify
            replace: title
            title: Sentinel

            dn: cn=ops,\(Fixture.groups)
            changetype: modify
            add: memberUid
            memberUid: dave
            """)
        steps.grants.insert("dave support-copilot ops:read ops:dave")
        try await world.waitForGrants(steps.grants, "sentinel group change")
        try await world.eventually("sentinel person change") { try await world.identity("dave")?.title == "Sentinel" }
        #expect(try await world.grants() == steps.grants)
        #expect(try await world.identity("carol")?.id == carol.id)
        #expect(try await world.identity("jdoe")?.id == jdoe.id)
        #expect(try await world.audit("grant.revoked").count == revokedBefore)

        // Delete a person: terminated, grants revoked.
        try await steps.bobIsDeleted()

        // Delete a sponsor: their agent is quarantined.
        try slapd.modify("""
            dn: uid=mkhan,ou=eng,\(Fixture.people)
            changetype: delete
            """)
        steps.grants.remove("agent:ledger-bot ledger-bot ledger:read erp:ledger/*")
        try await world.waitForGrants(steps.grants, "mkhan deleted")
        #expect(try await world.store.agentStates()["ledger-bot"]?.quarantined == true)
        #expect(try await world.audit("agent.quarantined").contains { $0["agent"] == "ledger-bot" })
        if case .broken(let seq, let reason) = try await world.store.verifyAuditChain() {
            Issue.record("audit chain broken at \(seq): \(reason)")
        }
        #expect(try await world.audit("source.degraded").isEmpty)
        await world.stop()
    }
}
