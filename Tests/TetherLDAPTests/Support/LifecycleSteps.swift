import SlapdHarness
import Testing

/// Changes every lifecycle scenario makes, whatever the server: each edits the fixture
/// directory, updates the grants the test expects, and waits until the store holds them.
struct LifecycleSteps {
    let world: World
    let directory: any TestDirectory
    var grants = Fixture.initialGrants

    init(world: World, directory: any TestDirectory) {
        self.world = world
        self.directory = directory
    }

    /// Waits for the fixture's grants: the whole directory read.
    func initialGrants(sourceLocation: SourceLocation = #_sourceLocation) async throws {
        try await world.waitForGrants(grants, "initial grants", sourceLocation: sourceLocation)
    }

    /// bob joins the support group: granted its queue.
    mutating func bobJoinsSupport(sourceLocation: SourceLocation = #_sourceLocation) async throws {
        try directory.modify("""
            dn: cn=support,\(Fixture.groups)
            changetype: modify
            add: member
            member: uid=bob,ou=sales,\(Fixture.people)
            """)
        grants.insert("bob support-copilot tickets:read zendesk:queue/Success")
        try await world.waitForGrants(grants, "bob joins support", sourceLocation: sourceLocation)
    }

    /// jdoe moves to the Success department: the queue follows.
    mutating func jdoeMovesDepartment(sourceLocation: SourceLocation = #_sourceLocation) async throws {
        try directory.modify("""
            dn: uid=jdoe,ou=eng,\(Fixture.people)
            changetype: modify
            replace: departmentNumber
            departmentNumber: Success
            """)
        grants.remove("jdoe support-copilot tickets:read zendesk:queue/Support")
        grants.insert("jdoe support-copilot tickets:read zendesk:queue/Success")
        try await world.waitForGrants(grants, "jdoe's queue follows the department", sourceLocation: sourceLocation)
    }

    /// bob is deleted (after ``bobJoinsSupport()``): terminated, every grant revoked.
    mutating func bobIsDeleted(sourceLocation: SourceLocation = #_sourceLocation) async throws {
        try directory.modify("""
            dn: uid=bob,ou=sales,\(Fixture.people)
            changetype: delete
            """)
        grants.remove("bob support-copilot tickets:read zendesk:queue/Success")
        grants.remove("bob support-copilot ops:read ops:bob")
        try await world.waitForGrants(grants, "bob deleted", sourceLocation: sourceLocation)
        #expect(try await world.identity("bob")?.status == .terminated, sourceLocation: sourceLocation)
    }
}
