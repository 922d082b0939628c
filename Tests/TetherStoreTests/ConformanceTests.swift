import Foundation
import Testing
import TetherCore
import TetherStore

/// The behaviour every StateStore backend must show.
@Suite struct ConformanceTests {
    @Test(arguments: Backend.allCases)
    func identitiesRoundTripAndAreFoundByEveryKey(_ backend: Backend) async throws {
        let store = try await backend.make()
        let alice = Sample.identity("alice", employeeNumber: "1001")
        var changeset = Changeset(time: Sample.time)
        changeset.identities = [alice, Sample.identity("bob", status: .terminated)]
        try await store.commit(changeset)

        #expect(try await store.identity(id: "i_alice") == alice)
        #expect(try await store.identity(userName: "alice") == alice)
        #expect(try await store.identity(source: .ldap, externalId: "uuid-alice") == alice)
        #expect(try await store.identity(source: .hr, externalId: "uuid-alice") == nil)
        let byEmail = IdentityFacts(email: "ALICE@example.COM", version: "v")
        #expect(try await store.correlationCandidates(for: byEmail, from: .scim).map(\.id) == ["i_alice"])
        let byNumber = IdentityFacts(employeeNumber: "1001", version: "v")
        #expect(try await store.correlationCandidates(for: byNumber, from: .hr).map(\.id) == ["i_alice"])
        #expect(try await store.identities(status: .terminated).map(\.userName) == ["bob"])
        #expect(try await store.identityCounts() == [.active: 1, .suspended: 0, .terminated: 1])
    }

    @Test(arguments: Backend.allCases)
    func grantsCommitWithTheirAuditRecordsAndOutboxRows(_ backend: Backend) async throws {
        let store = try await backend.make()
        let grants = [Sample.grant("alice"), Sample.grant("alice", "tickets:write"), Sample.grant("bob")]
        let receipt = try await store.commit(Sample.granting(grants, targets: ["gateway"]))
        #expect(receipt.auditSeqs == 1...3)
        #expect(try await store.grantCount() == 3)
        #expect(try await store.grants(subject: "alice", agent: nil).map(\.grant.scope) == ["tickets:read", "tickets:write"])
        #expect(try await store.grants(subjects: ["bob"], agents: []).map(\.grant.subject) == ["bob"])
        let stored = try #require(try await store.grant(id: grants[0].grant.id))
        #expect(stored.justified == grants[0])
        #expect(stored.auditSeq == 1)
        #expect(try await store.outbox(target: "gateway").map(\.operation) == [.put, .put, .put])

        var revoke = Changeset(time: Sample.time)
        revoke.steps = [.revoke(grants[2], reason: "identity terminated")]
        revoke.targets = ["gateway"]
        try await store.commit(revoke)
        #expect(try await store.grantCount() == 2)
        #expect(try await store.outbox(target: "gateway").last?.operation == .delete)
    }

    @Test(arguments: Backend.allCases)
    func theOutboxBacklogCountsWhatWaitsForEachTarget(_ backend: Backend) async throws {
        let store = try await backend.make()
        #expect(try await store.outboxBacklog(target: "gateway") == OutboxBacklog(pending: 0, oldestCreatedAt: nil))
        try await store.commit(Sample.granting([Sample.grant("alice")], targets: ["gateway"]))
        var later = Sample.granting([Sample.grant("bob"), Sample.grant("carol")], targets: ["gateway", "wiki"])
        later.time = Sample.time.addingTimeInterval(60)
        try await store.commit(later)

        let gateway = try await store.outbox(target: "gateway")
        #expect(try await store.outboxBacklog(target: "gateway") == OutboxBacklog(pending: 3, oldestCreatedAt: gateway.first?.createdAt))
        #expect(gateway.first?.createdAt == Sample.time)
        #expect(try await store.outboxBacklog(target: "wiki") == OutboxBacklog(pending: 2, oldestCreatedAt: later.time))
        try await store.markDelivered(ids: [gateway[0].id])
        #expect(try await store.outboxBacklog(target: "gateway") == OutboxBacklog(pending: 2, oldestCreatedAt: later.time))

        // The latest failure, whichever row's retry is due last.
        try await store.markFailed(id: gateway[1].id, error: "PUT: HTTP 500", at: later.time, nextAttemptAt: later.time.addingTimeInterval(300))
        try await store.markFailed(id: gateway[2].id, error: "PUT: cannot connect", at: later.time.addingTimeInterval(0.5), nextAttemptAt: later.time.addingTimeInterval(1))
        #expect(try await store.outboxBacklog(target: "gateway").lastError == "PUT: cannot connect")
        #expect(try await store.outboxBacklog(target: "wiki").lastError == nil)
        try await store.markDelivered(ids: [gateway[2].id])
        #expect(try await store.outboxBacklog(target: "gateway").lastError == "PUT: HTTP 500")
    }

    @Test(arguments: Backend.allCases)
    func planningFoldsEveryIdentityWithItsSourceVersions(_ backend: Backend) async throws {
        let store = try await backend.make()
        var changeset = Changeset(time: Sample.time)
        changeset.identities = [Sample.identity("bob"), Sample.identity("alice", employeeNumber: "1001")]
        try await store.commit(changeset)
        let read = try await store.inspect { reads in
            var read: [Identity] = []
            try reads.planningIdentities { batch in
                for offset in 0..<batch.count { read.append(try batch.identity(at: offset)) }
            }
            return read
        }
        let full = try await store.identities(status: nil)
        #expect(read.map(\.id) == ["i_alice", "i_bob"])
        #expect(read.map(\.groups) == full.map(\.groups))
        #expect(read.map(\.employeeNumber) == full.map(\.employeeNumber))
        #expect(read.map { $0.sources.mapValues(\.version) } == full.map { $0.sources.mapValues(\.version) })
    }

    /// A full reconciliation reads identities in batches: each identity once, in listing
    /// order, across the batches' boundaries.
    @Test(arguments: Backend.allCases)
    func planningReadsManyIdentitiesOnceEachInOrder(_ backend: Backend) async throws {
        let store = try await backend.make()
        var changeset = Changeset(time: Sample.time)
        changeset.identities = (0..<10_000).map { Identity(id: String(format: "i_%05d", $0), userName: String(format: "u%05d", 9_999 - $0)) }
        try await store.commit(changeset)
        let (ids, batches) = try await store.inspect { reads in
            var (ids, batches): ([IdentityID], [Int]) = ([], [])
            try reads.planningIdentities { batch in
                batches.append(batch.count)
                for offset in 0..<batch.count { ids.append(try batch.identity(at: offset).id) }
            }
            return (ids, batches)
        }
        #expect(ids == (try await store.identitySummaries()).map(\.id))
        #expect(ids == (0..<10_000).reversed().map { String(format: "i_%05d", $0) })
        #expect(batches.count > 1, "a store this size is read in more than one batch")
    }

    @Test(arguments: Backend.allCases)
    func aGrantIsNeverStoredTwice(_ backend: Backend) async throws {
        let store = try await backend.make()
        try await store.commit(Sample.granting([Sample.grant("alice")]))
        await #expect(throws: StoreError.self) {
            try await store.commit(Sample.granting([Sample.grant("alice")]))
        }
        #expect(try await store.grantCount() == 1)
        #expect(try await store.auditRecords(AuditQuery()).count == 1)
    }

    @Test(arguments: Backend.allCases)
    func eventsAreRecordedOnceWithTheirStatus(_ backend: Backend) async throws {
        let store = try await backend.make()
        let later = Sample.time.addingTimeInterval(3_600)
        let leaver = LifecycleEvent(
            id: "evt-1", source: .hr, kind: .leaver, occurredAt: Sample.time, effectiveAt: later,
            facts: IdentityFacts(employeeNumber: "1001", status: .terminated, version: "v1"))
        var changeset = Changeset(time: Sample.time)
        changeset.event = EventRecord(event: leaver, status: .scheduled, identity: nil, receivedAt: Sample.time)
        try await store.commit(changeset)
        #expect(try await store.eventStatus(id: "evt-1") == .scheduled)
        #expect(try await store.eventStatus(id: "evt-2") == nil)
        #expect(try await store.scheduledLeavers(dueBy: Sample.time).isEmpty)
        #expect(try await store.scheduledLeavers(dueBy: later).map(\.id) == ["evt-1"])

        var done = Changeset(time: later)
        done.event = EventRecord(event: leaver, status: .applied, identity: nil, receivedAt: later)
        done.completedScheduledLeaver = "evt-1"
        try await store.commit(done)
        #expect(try await store.eventStatus(id: "evt-1") == .applied)
        #expect(try await store.scheduledLeavers(dueBy: nil).isEmpty)
    }

    @Test(arguments: Backend.allCases)
    func heldPlansAreRecordedAndResolved(_ backend: Backend) async throws {
        let store = try await backend.make()
        var plan = Plan(scope: .full, steps: [.revoke(Sample.grant("alice"), reason: "gone")])
        plan.held = "too many"
        var changeset = Changeset(time: Sample.time)
        changeset.heldPlan = plan
        changeset.pendingIdentities = [Sample.identity("alice", status: .terminated)]
        try await store.commit(changeset)
        let recorded = try #require(try await store.plan(id: plan.id))
        #expect(recorded.plan == plan)
        #expect(recorded.status == .held)
        #expect(recorded.pendingIdentities.map(\.status) == [.terminated])
        #expect(try await store.planCount(status: .held) == 1)
        #expect(try await store.planCount(status: .rejected) == 0)

        var resolve = Changeset(time: Sample.time)
        resolve.planResolution = (plan.id, .rejected, "operator:root")
        try await store.commit(resolve)
        #expect(try await store.plans(status: .held).isEmpty)
        #expect(try await store.planCount(status: .held) == 0)
        #expect(try await store.planCount(status: .rejected) == 1)
        #expect(try await store.plan(id: plan.id)?.resolvedBy == "operator:root")
    }

    @Test(arguments: Backend.allCases)
    func auditChainIsContinuousAcrossCommitsAndQueryable(_ backend: Backend) async throws {
        let store = try await backend.make()
        try await store.commit(Sample.granting([Sample.grant("alice")]))
        try await store.commit(Sample.granting([Sample.grant("bob")]))
        let records = try await store.auditRecords(AuditQuery())
        #expect(records.map(\.seq) == [1, 2])
        #expect(records[1].prev == records[0].hash)
        #expect(try await store.verifyAuditChain() == .intact(records: 2))
        #expect(try await store.auditRecords(AuditQuery(subject: "bob")).map(\.seq) == [2])
        #expect(try await store.auditRecords(AuditQuery(afterSeq: 1)).map(\.seq) == [2])
    }

    @Test(arguments: Backend.allCases)
    func agentAndSourceStatesRoundTrip(_ backend: Backend) async throws {
        let store = try await backend.make()
        var changeset = Changeset(time: Sample.time)
        let state = AgentState(agent: "a", sponsorOverride: "boss", quarantined: true, reason: "r", proposedSponsor: "boss", awaitsOperator: true)
        changeset.agentStates = [state]
        changeset.sourceState = SourceState(source: .ldap, health: .degraded, mode: "syncrepl", lastError: "timeout", cookie: Data([1, 2, 3]))
        try await store.commit(changeset)
        #expect(try await store.agentStates() == ["a": state])
        let source = try #require(try await store.sourceState(.ldap))
        #expect(source.cookie == Data([1, 2, 3]))
        #expect(source.health == .degraded)
        #expect(source.lastError == "timeout")
    }
}

/// The bulk reads full reconciliations and the check index use agree with the plain reads.
@Suite struct BulkReadConformanceTests {
    @Test(arguments: Backend.allCases)
    func bulkReadsAgreeWithThePlainOnes(_ backend: Backend) async throws {
        let store = try await backend.make()
        let grants = [Sample.grant("alice"), Sample.grant("alice", "tickets:write"), Sample.grant("bob")]
        try await store.commit(Sample.granting(grants))
        let stored = try await store.grants(subject: nil, agent: nil)
        #expect(Set(try await store.grantKeys().keys) == Set(stored.map(\.grant.key)))
        #expect(try await store.grants(ids: stored.map(\.id).reversed() + ["g_missing"]) == stored)
        let policies = try await store.reduceGrantPolicies(into: [String: String]()) { result, grant, policy in
            result[grant.id] = policy
        }
        #expect(policies == Dictionary(uniqueKeysWithValues: stored.map { ($0.id, $0.justified.lineage.policy) }))
    }

    @Test(arguments: Backend.allCases)
    func identitiesAreFoldedInTheOrderTheyAreListed(_ backend: Backend) async throws {
        let store = try await backend.make()
        var changeset = Changeset(time: Date(timeIntervalSince1970: 1_800_000_000))
        changeset.identities = [
            Identity(id: "i_2", userName: "bob", status: .terminated),
            Identity(id: "i_1", userName: "alice"),
            Identity(id: "i_0", userName: "bob"),
        ]
        try await store.commit(changeset)
        let listed = try await store.identities(status: nil)
        let folded = try await store.reduceIdentities(into: [Identity]()) { $0.append($1) }
        #expect(folded == listed)
        #expect(try await store.identitySummaries() == listed.map { IdentitySummary(id: $0.id, userName: $0.userName, status: $0.status) })
    }

    /// The groups of active identities, and how many are active: read without decoding
    /// identities, and the same as decoding them would give.
    @Test(arguments: Backend.allCases)
    func activeGroupsAreTheGroupsOfActiveIdentitiesOnly(_ backend: Backend) async throws {
        let store = try await backend.make()
        let empty = try await store.activeGroups()
        #expect(empty.activeIdentities == 0 && empty.groups.isEmpty)
        var changeset = Changeset(time: Date(timeIntervalSince1970: 1_800_000_000))
        changeset.identities = [
            Identity(id: "i_1", userName: "alice", groups: ["support", "cn=Tier 2,ou=groups,dc=example,dc=com"]),
            Identity(id: "i_2", userName: "bob", groups: ["support", "\"quoted\" é"]),
            Identity(id: "i_3", userName: "carol", status: .terminated, groups: ["finance"]),
            Identity(id: "i_4", userName: "dave", status: .suspended, groups: ["legal"]),
            Identity(id: "i_5", userName: "erin"),
        ]
        try await store.commit(changeset)
        let (active, groups) = try await store.activeGroups()
        #expect(active == 3)
        #expect(groups == ["support", "cn=Tier 2,ou=groups,dc=example,dc=com", "\"quoted\" é"])
    }
}
