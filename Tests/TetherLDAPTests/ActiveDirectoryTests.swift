import Foundation
import SlapdHarness
import TetherConfig
import TetherCore
import Testing

/// The lifecycle through an Active Directory domain controller (Samba), configured as
/// docs/ldap.md says for AD: `objectGUID` as the externalId, `sAMAccountName` as the userName,
/// `userAccountControl`'s disabled bit for suspension, and `auto` change detection, which
/// must find no RFC 4533 and poll by update sequence number. Needs root and the Samba AD
/// packages: `scripts/test-ad` installs them and runs these with `TETHER_SAMBA_AD=1`;
/// `scripts/test` leaves them out.
@Suite(
    "LDAP lifecycle through an Active Directory domain controller",
    .serialized,
    .enabled(if: ProcessInfo.processInfo.environment["TETHER_SAMBA_AD"] == "1", "scripts/test-ad runs these"))
struct ActiveDirectoryTests {
    static let people = "OU=People,\(SambaActiveDirectory.baseDN)"
    static let groups = "OU=Groups,\(SambaActiveDirectory.baseDN)"

    static func user(_ name: String, number: Int, department: String, manager: String? = nil) -> String {
        """
        dn: CN=\(name),\(people)
        objectClass: user
        sAMAccountName: \(name)
        userPrincipalName: \(name)@example.test
        mail: \(name)@example.test
        employeeID: \(number)
        department: \(department)
        userAccountControl: 512
        \(manager.map { "manager: CN=\($0),\(people)\n" } ?? "")
        """
    }

    /// The OUs of people and groups, and the sponsors (jdoe, mkhan).
    static let sponsorsLDIF = """
        dn: \(people)
        objectClass: organizationalUnit
        ou: People

        dn: \(groups)
        objectClass: organizationalUnit
        ou: Groups

        \(user("jdoe", number: 1001, department: "Support"))
        \(user("mkhan", number: 1002, department: "Finance"))
        """

    /// The sponsors (jdoe, mkhan), alice in support, bob not yet.
    static let ldif = """
        \(sponsorsLDIF)
        \(user("alice", number: 1003, department: "Support", manager: "jdoe"))
        \(user("bob", number: 1004, department: "Success", manager: "jdoe"))
        dn: CN=support,\(groups)
        objectClass: group
        sAMAccountName: support
        member: CN=jdoe,\(people)
        member: CN=alice,\(people)
        """

    /// Tether following `server` as docs/ldap.md configures Active Directory, with no
    /// complete read on a timer during a test (`fullScanInterval` of an hour).
    static func world(_ server: SambaActiveDirectory, safety: SafetyLimits = SafetyLimits()) throws -> World {
        let world = try World(
            url: server.url, bindDN: server.bindDN, password: server.password, changeDetection: .auto, pageSize: 500,
            safety: safety)
        world.configuration.users = LDAPUsersConfiguration(base: Self.people, filter: "(&(objectCategory=person)(objectClass=user))")
        world.configuration.groups = LDAPGroupsConfiguration(base: Self.groups, filter: "(objectClass=group)")
        world.configuration.attributes = [:]
        world.configuration.mapping = LDAPMappingConfiguration(
            externalId: "objectGUID", userName: "sAMAccountName", email: "mail", employeeNumber: "employeeID",
            department: "department", manager: "manager")
        world.configuration.suspendWhen = LDAPSuspendConfiguration(attribute: "userAccountControl", test: .bitsSet(2))
        world.configuration.fullScanInterval = .seconds(3_600)
        return world
    }

    @Test("auto polls by USN: joiners, group changes, disabled accounts, departments, deletions")
    func pollByUpdateSequenceNumber() async throws {
        try #require(SambaActiveDirectory.isAvailable, "needs root and Samba's AD domain controller")
        let server = try SambaActiveDirectory.start(ldif: Self.ldif)
        defer { server.destroy() }
        // The changes below must come from the USN poll (every 200 ms).
        let world = try Self.world(server)
        world.start()

        var grants: Set<String> = [
            "jdoe support-copilot tickets:read zendesk:queue/Support",
            "alice support-copilot tickets:read zendesk:queue/Support",
            "agent:ledger-bot ledger-bot ledger:read erp:ledger/*",
        ]
        try await world.waitForGrants(grants, "initial grants")
        #expect(world.events.all.contains(.connected(mode: "poll")), "no RFC 4533 on AD: auto polls")
        let alice = try #require(try await world.identity("alice"))
        let externalId = try #require(alice.sources[.ldap]?.externalId)
        #expect(UUID(uuidString: externalId) != nil, "objectGUID becomes its UUID string: \(externalId)")
        let jdoe = try #require(try await world.identity("jdoe"))
        #expect(alice.manager == jdoe.id)
        #expect(alice.employeeNumber == "1003")

        // A group change moves the group's USN, not the member's.
        try server.modify("""
            dn: CN=support,\(Self.groups)
            changetype: modify
            add: member
            member: CN=bob,\(Self.people)
            """)
        grants.insert("bob support-copilot tickets:read zendesk:queue/Success")
        try await world.waitForGrants(grants, "bob joins support")

        // Disabled (ACCOUNTDISABLE, bit 2): suspended, grants revoked; enabled again: restored.
        for (flags, what) in [("514", "alice disabled"), ("512", "alice enabled")] {
            try server.modify("""
                dn: CN=alice,\(Self.people)
                changetype: modify
                replace: userAccountControl
                userAccountControl: \(flags)
                """)
            if flags == "514" {
                grants.remove("alice support-copilot tickets:read zendesk:queue/Support")
            } else {
                grants.insert("alice support-copilot tickets:read zendesk:queue/Support")
            }
            try await world.waitForGrants(grants, what)
        }
        #expect(try await world.identity("alice")?.status == .active)
        #expect(try await world.identity("alice")?.id == alice.id)

        // A department move: the queue follows.
        try server.modify("""
            dn: CN=jdoe,\(Self.people)
            changetype: modify
            replace: department
            department: Success
            """)
        grants.remove("jdoe support-copilot tickets:read zendesk:queue/Support")
        grants.insert("jdoe support-copilot tickets:read zendesk:queue/Success")
        try await world.waitForGrants(grants, "jdoe's queue follows the department")

        // A deletion: the poll's tombstone search or the complete read an operator asks for
        // (`tether resync --full --source ldap`), whichever comes first, makes the leaver.
        try server.modify("""
            dn: CN=bob,\(Self.people)
            changetype: delete
            """)
        let service = try #require(world.service)
        _ = try await service.resync()
        grants.remove("bob support-copilot tickets:read zendesk:queue/Success")
        try await world.waitForGrants(grants, "bob deleted")
        #expect(try await world.identity("bob")?.status == .terminated)
        #expect(try await world.audit("source.degraded").isEmpty)
        await world.stop()
    }
}
