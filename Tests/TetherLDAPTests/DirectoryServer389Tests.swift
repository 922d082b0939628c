import Foundation
import SlapdHarness
import TetherConfig
import TetherCore
import Testing

/// The lifecycle through a real 389 Directory Server, configured as docs/ldap.md says:
/// `nsUniqueId` as the externalId, `nsAccountLock` for locked accounts, syncrepl through the
/// Content Synchronization plugin (and paged polling). Each instance takes seconds to create
/// and needs root and the `389-ds-base` package: `scripts/test-389ds` installs it and runs
/// these with `TETHER_389DS=1`; `scripts/test` leaves them out.
@Suite(
    "LDAP lifecycle through a real 389 Directory Server",
    .serialized,
    .enabled(if: ProcessInfo.processInfo.environment["TETHER_389DS"] == "1", "scripts/test-389ds runs these"))
struct DirectoryServer389Tests {
    @Test("syncrepl (Content Synchronization): joiners, groups, locks, departments, renames, deletions")
    func syncrepl() async throws {
        try await runScenario(detection: .auto, expectedMode: "syncrepl")
    }

    @Test("poll: the same lifecycle read with paged searches")
    func poll() async throws {
        try await runScenario(detection: .poll, expectedMode: "poll")
    }

    /// The fixture directory without its suffix entry, which the instance already holds.
    static var entries: String {
        Fixture.ldif.components(separatedBy: "\n\n").dropFirst().joined(separator: "\n\n")
    }

    private func runScenario(detection: LDAPChangeDetection, expectedMode: String) async throws {
        try #require(DirectoryServer389.isAvailable, "needs root and the 389-ds-base package")
        let server = try DirectoryServer389.start(ldif: Self.entries)
        defer { server.destroy() }
        let world = try World(
            url: server.url, bindDN: DirectoryServer389.rootDN, password: DirectoryServer389.rootPassword,
            changeDetection: detection)
        world.configuration.mapping.externalId = "nsUniqueId"
        world.configuration.suspendWhen = LDAPSuspendConfiguration(attribute: "nsAccountLock", test: .equals("true"))
        world.start()

        // Joiners: the whole directory, nested groups, a cycle and a posixGroup.
        var grants = Fixture.initialGrants
        try await world.waitForGrants(grants, "initial grants")
        #expect(world.events.all.contains(.connected(mode: expectedMode)))
        let alice = try #require(try await world.identity("alice"))
        let aliceDN = "uid=alice,ou=sales,\(Fixture.people)"
        let uniqueID = try #require(
            try server.read(aliceDN, ["nsUniqueId"]).split(separator: "\n")
                .first { $0.hasPrefix("nsUniqueId: ") }.map { String($0.dropFirst("nsUniqueId: ".count)) })
        #expect(alice.sources[.ldap]?.externalId == uniqueID, "the externalId is the entry's nsUniqueId")
        let jdoe = try #require(try await world.identity("jdoe"))
        #expect(alice.manager == jdoe.id)

        // Add a person to a group: grant.
        try server.modify("""
            dn: cn=support,\(Fixture.groups)
            changetype: modify
            add: member
            member: uid=bob,ou=sales,\(Fixture.people)
            """)
        grants.insert("bob support-copilot tickets:read zendesk:queue/Success")
        try await world.waitForGrants(grants, "bob joins support")

        // Lock (nsAccountLock: true): suspended, grants revoked; unlock restores.
        try server.modify("""
            dn: \(aliceDN)
            changetype: modify
            replace: nsAccountLock
            nsAccountLock: true
            """)
        grants.remove("alice support-copilot tickets:read zendesk:queue/Support")
        try await world.waitForGrants(grants, "alice locked")
        #expect(try await world.identity("alice")?.status == .suspended)
        try server.modify("""
            dn: \(aliceDN)
            changetype: modify
            delete: nsAccountLock
            """)
        grants.insert("alice support-copilot tickets:read zendesk:queue/Support")
        try await world.waitForGrants(grants, "alice unlocked")
        #expect(try await world.identity("alice")?.status == .active)

        // Change the department: the resource template follows.
        try server.modify("""
            dn: uid=jdoe,ou=eng,\(Fixture.people)
            changetype: modify
            replace: departmentNumber
            departmentNumber: Success
            """)
        grants.remove("jdoe support-copilot tickets:read zendesk:queue/Support")
        grants.insert("jdoe support-copilot tickets:read zendesk:queue/Success")
        try await world.waitForGrants(grants, "jdoe's queue follows the department")

        // A rename keeps nsUniqueId: the same identity, its grants kept.
        let revokedBefore = try await world.audit("grant.revoked").count
        try server.modify("""
            dn: uid=carol,ou=eng,\(Fixture.people)
            changetype: modrdn
            newrdn: cn=Carol Jones
            deleteoldrdn: 0
            """)
        try server.modify("""
            dn: uid=dave,ou=eng,\(Fixture.people)
            changetype: modify
            replace: title
            title: Sentinel
            """)
        try await world.eventually("the change after the rename") { try await world.identity("dave")?.title == "Sentinel" }
        #expect(try await world.grants() == grants)
        #expect(try await world.audit("grant.revoked").count == revokedBefore)

        // Delete a person: terminated, grants revoked.
        try server.modify("""
            dn: uid=bob,ou=sales,\(Fixture.people)
            changetype: delete
            """)
        grants.remove("bob support-copilot tickets:read zendesk:queue/Success")
        grants.remove("bob support-copilot ops:read ops:bob")
        try await world.waitForGrants(grants, "bob deleted")
        #expect(try await world.identity("bob")?.status == .terminated)
        #expect(try await world.identity("carol")?.status == .active)
        await world.stop()
    }
}
