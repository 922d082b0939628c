import Foundation
import PostgresHarness
import Testing
import TetherCore
@testable import TetherStore

/// The lease several daemons on one database share (SPEC §14): one holder at a time, a new
/// epoch each time it changes hands, and writes fenced by it, so a leader that lost its lease
/// (paused past it) commits nothing.
@Suite struct LeaseTests {
    static func stores(_ count: Int) async throws -> (stores: [PostgresStateStore], database: String) {
        let cluster = try await PostgresCluster.shared()
        let database = try await cluster.makeDatabase()
        let url = cluster.url(database: database)
        var stores: [PostgresStateStore] = []
        for _ in 0..<count { stores.append(try await PostgresStateStore(settings: PostgresSettings(url: url, poolSize: 2))) }
        return (stores, database)
    }

    /// The lease runs out, as it does while its holder is paused: by the server's clock, now.
    static func expire(in database: String) async throws {
        try await PostgresCluster.shared().psql("UPDATE tether_lease SET expiresAt = clock_timestamp()", database: database)
    }

    @Test func oneHolderAtATimeAndANewEpochWhenItChangesHands() async throws {
        let (stores, database) = try await Self.stores(2)
        let (a, b) = (stores[0], stores[1])
        let first = try await a.acquireLease(node: "a", address: "http://a", duration: .seconds(60))
        #expect(first.holder == "a" && first.epoch == 1)
        // Held: another node cannot take it, and the holder renews it under the same epoch.
        #expect(try await b.acquireLease(node: "b", address: "http://b", duration: .seconds(60)).holder == "a")
        #expect(try await a.acquireLease(node: "a", address: "http://a", duration: .seconds(60)).epoch == 1)
        // Released, it is taken at once, under the next epoch.
        try await a.releaseLease(node: "a")
        let second = try await b.acquireLease(node: "b", address: "http://b", duration: .seconds(60))
        #expect(second.holder == "b" && second.epoch == 2 && second.address == "http://b")
        #expect(try await a.currentLease()?.holder == "b")
        // Run out, it is taken by the next node to ask, under the next epoch again.
        try await Self.expire(in: database)
        #expect(try await a.acquireLease(node: "a", address: "http://a", duration: .seconds(60)).epoch == 3)
    }

    @Test func aLeaderThatLostItsLeaseCommitsNothing() async throws {
        let (stores, database) = try await Self.stores(2)
        let (old, new) = (stores[0], stores[1])
        let lease = try await old.acquireLease(node: "old", address: "http://old", duration: .seconds(60))
        old.fence(node: "old", epoch: lease.epoch)
        try await old.commit(Sample.granting([Sample.grant("alice")]))
        #expect(try await new.acquireLease(node: "new", address: "http://new", duration: .seconds(60)).holder == "old")
        // The old leader pauses past its lease (no renewal); the other node takes it over.
        try await Self.expire(in: database)
        let taken = try await new.acquireLease(node: "new", address: "http://new", duration: .seconds(60))
        #expect(taken.holder == "new" && taken.epoch == lease.epoch + 1)
        new.fence(node: "new", epoch: taken.epoch)

        // Waking up, the old leader still believes in its epoch: every write is refused.
        await #expect(throws: StoreError.self) { try await old.commit(Sample.granting([Sample.grant("bob")])) }
        await #expect(throws: StoreError.self) {
            try await old.commit(SCIMWrite(upserts: [
                SCIMResourceRecord(id: "u-1", kind: .user, userName: "bob", version: "1", created: Sample.time, lastModified: Sample.time, body: "{}")
            ]), with: [])
        }
        await #expect(throws: StoreError.self) { try await old.markFailed(id: 1, error: "x", at: Sample.time, nextAttemptAt: Sample.time) }
        let refused = await #expect(throws: StoreError.self) { try await old.commit(Sample.granting([Sample.grant("carol")])) }
        #expect(refused?.underlying is NotLeader, "\(String(describing: refused))")
        #expect(try await new.grants(subject: nil, agent: nil).map(\.grant.subject) == ["alice"])
        #expect(try await new.scimResource(id: "u-1") == nil)
        // The new leader writes, and its records follow the old one's without a gap.
        #expect(try await new.commit(Sample.granting([Sample.grant("dave")])).auditSeqs == 2...2)
        // A node that follows (no epoch) writes nothing either; the last uses of its checks it does.
        old.fence(node: "old", epoch: nil)
        await #expect(throws: StoreError.self) { try await old.commit(Sample.granting([Sample.grant("erin")])) }
        try await old.recordUsage(Usage(agents: ["support-copilot": 10]))
        #expect(try await new.agentUsage() == ["support-copilot": 10])
    }

    @Test func commitsAnnounceTheirRevisionAndAFollowerReadsWhatChanged() async throws {
        let (stores, _) = try await Self.stores(2)
        let (leader, follower) = (stores[0], stores[1])
        let events = follower.revisions(logger: .init(label: "test"))
        var iterator = events.makeAsyncIterator()
        #expect(await iterator.next() == .listening)
        try await leader.commit(Sample.granting([Sample.grant("alice"), Sample.grant("bob")], identities: [Sample.identity("alice")]))
        #expect(await iterator.next() == .committed(2))
        let changes = try await follower.changes(after: 0)
        #expect(changes.head == 2 && !changes.needsReload)
        #expect(Set(changes.grants.compactMap { $0.value?.grant.subject }) == ["alice", "bob"])
        #expect(changes.statuses["alice"]?["i_alice"] == .active)

        var revoke = Changeset(time: Sample.time)
        revoke.steps = [.revoke(Sample.grant("bob"), reason: "gone")]
        revoke.audit = [AuditEntry(
            action: .grantRevoked, actor: .hr, time: Sample.time,
            fields: ["grant": Sample.grant("bob").grant.id, "subject": "bob", "agent": "support-copilot"])]
        try await leader.commit(revoke)
        #expect(await iterator.next() == .committed(3))
        let after = try await follower.changes(after: 2)
        #expect(after.head == 3 && after.grants.count == 1)
        #expect(after.grants[Sample.grant("bob").grant.id] != nil && after.grants[Sample.grant("bob").grant.id]! == nil)
        #expect(after.owners[Sample.grant("bob").grant.id]?.subject == "bob")
    }

    @Test func aWriteWhileTheServerIsDownFailsWithinTheWaitAndTheNextSucceedsOnceItIsBack() async throws {
        let cluster = try await PostgresCluster.own()
        let database = try await cluster.makeDatabase()
        let store = try await PostgresStateStore(settings: PostgresSettings(url: cluster.url(database: database), poolSize: 2))
        store.waitForConnections(atMost: .milliseconds(500))
        try await store.commit(Sample.granting([Sample.grant("alice")]))

        try await cluster.stopServer()
        // A connection the pool still holds may first say the server ended it; then the pool
        // retries for ever, and a write gives up after the wait, saying why.
        var failures: [String] = []
        for _ in 0..<2 {
            let failed = await #expect(throws: StoreError.self) { try await store.commit(Sample.granting([Sample.grant("bob")])) }
            failures.append(failed.map { "\($0)" } ?? "")
        }
        #expect(failures.contains { $0.contains("no connection to the server within 500 ms") }, "\(failures)")
        // A read, too.
        await #expect(throws: StoreError.self) { _ = try await store.grants(subject: nil, agent: nil) }

        try await cluster.startServer()
        let recovered = try await eventuallyTrue { (try? await store.commit(Sample.granting([Sample.grant("bob")]))) != nil }
        #expect(recovered)
        #expect(Set(try await store.grants(subject: nil, agent: nil).map(\.grant.subject)) == ["alice", "bob"])
        await store.close()
    }

    /// Polls `condition` until it holds, for up to `timeout` seconds.
    func eventuallyTrue(timeout: TimeInterval = 20, _ condition: () async -> Bool) async throws -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if await condition() { return true }
            try await Task.sleep(for: .milliseconds(100))
        }
        return false
    }

    /// The server ends a write left idle past the limit (as it ends a frozen leader's): the
    /// writer's next statement fails at once with what happened, and the store goes on.
    @Test func aWriteTheServerEndedFailsInsteadOfHanging() async throws {
        let (stores, _) = try await Self.stores(1)
        let store = stores[0]
        store.limitIdleWrites(to: .seconds(1))
        let outcome = await withTaskGroup(of: String.self) { group in
            group.addTask {
                do {
                    try await store.write("a slow write") { session in
                        // Busy on the client for longer than the limit, between two statements.
                        Thread.sleep(forTimeInterval: 2.5)
                        try session.execute("SELECT 1")
                    }
                    return "committed"
                } catch {
                    return "\(error)"
                }
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(30))
                return "hung"
            }
            let first = await group.next() ?? "none"
            group.cancelAll()
            return first
        }
        #expect(outcome != "hung" && outcome != "committed", "\(outcome)")
        #expect(outcome.contains("a slow write was not committed"), "\(outcome)")
        try await store.commit(Sample.granting([Sample.grant("alice")]))
        #expect(try await store.grantCount() == 1)
    }
}
