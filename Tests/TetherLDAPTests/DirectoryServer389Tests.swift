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
        var steps = LifecycleSteps(world: world, directory: server)
        try await steps.initialGrants()
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
        try await steps.bobJoinsSupport()

        // Lock (nsAccountLock: true): suspended, grants revoked; unlock restores.
        try server.modify("""
            dn: \(aliceDN)
            changetype: modify
            replace: nsAccountLock
            nsAccountLock: true
            """)
        steps.grants.remove("alice support-copilot tickets:read zendesk:queue/Support")
        try await world.waitForGrants(steps.grants, "alice locked")
        #expect(try await world.identity("alice")?.status == .suspended)
        try server.modify("""
            dn: \(aliceDN)
            changetype: modify
            delete: nsAccountLock
            """)
        steps.grants.insert("alice support-copilot tickets:read zendesk:queue/Support")
        try await world.waitForGrants(steps.grants, "alice unlocked")
        #expect(try await world.identity("alice")?.status == .active)

        // Change the department: the resource template follows.
        try await steps.jdoeMovesDepartment()

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
        #expect(try await world.grants() == steps.grants)
        #expect(try await world.audit("grant.revoked").count == revokedBefore)

        // Delete a person: terminated, grants revoked.
        try await steps.bobIsDeleted()
        #expect(try await world.identity("carol")?.status == .active)
        await world.stop()
    }
}
