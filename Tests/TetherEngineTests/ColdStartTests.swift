import Foundation
import Synchronization
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

/// A full reconciliation says how far it is while it plans (`tether status`, `STATUS=`).
struct ReconcileProgressTests {
    @Test func aFullReconciliationCountsIdentitiesPlannedUpToAllOfThemThenItsCommit() async throws {
        let world = try World()
        try await world.seedSponsors()
        // Enough people for the plan to be folded in parts on several threads at once.
        // The sponsors are read with everyone else: a complete read ends whoever it leaves out.
        let users = [Events.ldap("jdoe", version: 1, department: "Support"), Events.ldap("boss", version: 1, department: "Exec")]
            + (0..<5_000).map { Events.ldap("user\($0)", version: 1, department: "Support") }
        _ = try await world.engine.applySnapshot(DirectorySnapshot(source: .ldap, users: users, mode: "poll"), actor: .policy)
        let everyone = try await world.store.identities(status: nil).count

        // A policy that now matches everyone in Support: a reload's reconciliation grants them.
        var configuration = await world.engine.configuration
        configuration.policySet = PolicySet(
            agents: Fixtures.policySet.agents,
            policies: Fixtures.policySet.policies + [Policy(
                id: "support-read", when: .attribute(name: "department", test: .in(["Support"])),
                grant: [GrantTemplate(agent: "support-copilot", scopes: ["tickets:read"], resource: "zendesk:queue/{department}")])])
        let engine = Engine(store: world.store, configuration: configuration, clock: world.clock)
        let reports = Reports()
        let outcome = try await engine.reconcile(origin: .other, actor: .policy) { reports.append($0) }
        #expect(outcome.plan.grants >= 5_000)

        let seen = reports.all
        let planning = seen.compactMap { report -> (Int, Int)? in
            if case .planning(let done, let total) = report { return (done, total) }
            return nil
        }
        #expect(planning.count > 3, "reported as it went, not only at the end: \(planning.count)")
        #expect(planning.allSatisfy { $0.1 == everyone })
        #expect(planning.first?.0 == 0)
        #expect(planning.map(\.0).max() == everyone)
        #expect(seen.last == .committing(changes: outcome.plan.steps.count))
    }
}

/// Reports collected from whichever thread makes them.
private final class Reports: Sendable {
    private let reports = Mutex<[ReconcileProgress]>([])
    func append(_ report: ReconcileProgress) { reports.withLock { $0.append(report) } }
    var all: [ReconcileProgress] { reports.withLock { $0 } }
}
