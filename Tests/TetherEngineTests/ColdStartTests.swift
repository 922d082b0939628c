import Foundation
import Testing
import TetherCore
import TetherEngine
import TetherStore

/// A cold start folds the directory's people on every core in consecutive slices: what it
/// commits must be what one pass over them, in order, derives.
struct ColdStartTests {
    @Test func aColdStartOfManyPeopleStoresWhatOnePassDerives() async throws {
        let world = try World()
        let departments = ["Support", "Success", "People"]
        var users = [Events.ldap("jdoe", version: 1, groups: ["support"], department: "Support")]
        users.append(Events.ldap("mkhan", version: 1, department: "People", title: "HR Partner"))
        for index in 0..<2_500 {
            // Every third person is in support, every fifth has an HR title: enough grants in
            // every slice, and people no policy matches between them.
            users.append(Events.ldap(
                "user\(index)", version: 1 + index % 50, groups: index % 3 == 0 ? ["support"] : [],
                department: departments[index % departments.count], title: index % 5 == 0 ? "HR Advisor" : "Engineer"))
        }
        let outcome = try await world.engine.applySnapshot(DirectorySnapshot(source: .ldap, users: users, mode: "poll"))
        guard case .applied = outcome else {
            Issue.record("the cold start was held: \(outcome.plan.held ?? "")")
            return
        }

        let identities = try await world.store.identities(status: nil)
        #expect(identities.count == users.count)
        let byName = Dictionary(identities.map { ($0.userName, $0) }, uniquingKeysWith: { first, _ in first })
        let ordered = try users.map { facts in try #require(byName[facts.userName ?? ""]) }
        let agents = Set(Fixtures.policySet.agents.map(\.id))
        let reference = DesiredState(policySet: Fixtures.policySet).compute(identities: ordered, activeAgents: agents)
        let stored = try await world.store.grants(subject: nil, agent: nil)
        #expect(stored.count > 2_000)
        #expect(stored.count == reference.count)
        for grant in stored {
            #expect(reference[grant.grant.id] == grant.justified, "\(grant.grant.id)")
        }
    }

    /// A daemon asked to stop cancels its source's task: a read in progress is dropped before
    /// its commit, with nothing written, and made again at the next start.
    @Test func aCancelledReadCommitsNothing() async throws {
        let world = try World()
        let users = (0..<3_000).map { Events.ldap("user\($0)", version: 1, groups: ["support"], department: "Support") }
        let (started, didStart) = AsyncStream.makeStream(of: Void.self)
        let read = Task {
            // Cancelled before the engine starts the read: the read must see it, not run to its end.
            for await _ in started { break }
            return try await world.engine.applySnapshot(DirectorySnapshot(source: .ldap, users: users, mode: "poll"))
        }
        read.cancel()
        didStart.yield()
        await #expect(throws: CancellationError.self) { try await read.value }
        #expect(try await world.store.identities(status: nil).isEmpty)
        #expect(try await world.store.grants(subject: nil, agent: nil).isEmpty)
        #expect(try await world.auditActions().isEmpty)
        #expect(try await world.store.sourceState(.ldap) == nil)
    }
}
