import Foundation
import Testing
import TetherCore
import TetherStore

/// What every backend must guarantee of its writes, whoever calls: a commit is all or
/// nothing, audit numbering has no gaps however many callers commit at once, the outbox
/// keeps its delivery order, and a decision's reads see one state while commits land.
@Suite struct CommitConformanceTests {
    /// A SCIM write that expects a resource that does not exist: a refusal every backend
    /// gives at commit time, with the changesets it carried.
    static let conflicting = SCIMWrite(
        upserts: [SCIMResourceRecord(
            id: "u-1", kind: .user, userName: "alice", version: "2", created: Sample.time, lastModified: Sample.time,
            body: "{}")],
        expectedVersions: ["u-1": "1"])

    @Test(arguments: Backend.allCases)
    func aRefusedCommitLeavesNothingAndTheNextOneFollowsWithoutAGap(_ backend: Backend) async throws {
        let store = try await backend.make()
        try await store.commit(Sample.granting([Sample.grant("carol")], targets: ["gateway"]))

        var changeset = Sample.granting(
            [Sample.grant("alice"), Sample.grant("bob")], identities: [Sample.identity("alice")], targets: ["gateway"])
        changeset.event = EventRecord(
            event: LifecycleEvent(id: "evt-1", source: .scim, kind: .joiner, occurredAt: Sample.time, facts: IdentityFacts(version: "v")),
            status: .applied, identity: "i_alice", receivedAt: Sample.time)
        changeset.sourceState = SourceState(source: .scim, health: .ok)
        var window = RevocationWindow()
        window.record(1, at: Sample.time, granularity: 5)
        changeset.windows = [.scim: window]
        await #expect(throws: StoreError.self) { try await store.commit(Self.conflicting, with: [changeset]) }

        #expect(try await store.grants(subject: nil, agent: nil).map(\.grant.subject) == ["carol"])
        #expect(try await store.identity(id: "i_alice") == nil)
        #expect(try await store.eventStatus(id: "evt-1") == nil)
        #expect(try await store.sourceState(.scim) == nil)
        #expect(try await store.revocationWindow(.scim) == nil)
        #expect(try await store.outbox(target: nil).count == 1)
        #expect(try await store.scimResource(id: "u-1") == nil)
        #expect(try await store.verifyAuditChain() == .intact(records: 1))

        // The refused commit took no audit numbers.
        let receipt = try await store.commit(changeset)
        #expect(receipt.auditSeqs == 2...3)
        #expect(try await store.verifyAuditChain() == .intact(records: 3))
    }

    /// A commit with more audit records than one chunk of sealing and inserting holds: the
    /// chunks chain on from each other, and a second commit chains on from the first.
    @Test(arguments: Backend.allCases)
    func auditRecordsOfManyChunksChainAsOne(_ backend: Backend) async throws {
        let store = try await backend.make()
        var changeset = Changeset(time: Sample.time)
        changeset.audit = (0..<10_050).map {
            AuditEntry(action: .grantGranted, actor: .ldap, time: Sample.time, fields: ["grant": "g_\($0)", "subject": "u\($0)"])
        }
        #expect(try await store.commit(changeset).auditSeqs == 1...10_050)
        changeset.audit = Array(changeset.audit.prefix(3))
        #expect(try await store.commit(changeset).auditSeqs == 10_051...10_053)
        #expect(try await store.verifyAuditChain() == .intact(records: 10_053))
        #expect(try await store.auditRecords(AuditQuery(grant: "g_10049")).map(\.seq) == [10_050])
    }

    @Test(arguments: Backend.allCases)
    func auditNumberingIsGapFreeUnderConcurrentCallers(_ backend: Backend) async throws {
        let store = try await backend.make()
        let callers = 24
        let receipts = try await withThrowingTaskGroup(of: CommitReceipt.self) { group in
            for caller in 0..<callers {
                group.addTask {
                    try await store.commit(Sample.granting(
                        [Sample.grant("user\(caller)"), Sample.grant("user\(caller)", "tickets:write")], targets: ["gateway"]))
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        // Every caller got two consecutive numbers, and together they are 1…48 with none twice.
        let numbers = receipts.flatMap { Array($0.auditSeqs ?? 0...(-1)) }.sorted()
        #expect(numbers == Array(1...(2 * callers)))
        #expect(receipts.allSatisfy { $0.auditSeqs?.count == 2 })
        let records = try await store.auditRecords(AuditQuery())
        #expect(records.map(\.seq) == Array(1...(2 * callers)))
        #expect(try await store.verifyAuditChain() == .intact(records: 2 * callers))
        #expect(try await store.outbox(target: "gateway").count == 2 * callers)
    }

    /// Revocations go first; a grant newer than a pending revocation waits for it, so a target
    /// never holds a grant past the revocation that came before it.
    @Test(arguments: Backend.allCases)
    func theOutboxDeliversRevocationsFirstAndHoldsNewerGrantsBehindThem(_ backend: Backend) async throws {
        let store = try await backend.make()
        let (alice, bob, carol) = (Sample.grant("alice"), Sample.grant("bob"), Sample.grant("carol"))
        try await store.commit(Sample.granting([alice], targets: ["gateway"]))
        try await store.commit(Sample.granting([bob], targets: ["gateway"]))
        var revoke = Changeset(time: Sample.time)
        revoke.steps = [.revoke(bob, reason: "identity terminated")]
        revoke.targets = ["gateway"]
        try await store.commit(revoke)
        try await store.commit(Sample.granting([carol], targets: ["gateway"]))

        let later = Sample.time.addingTimeInterval(60)
        // bob's grant is moot (revoked since) and dropped; alice's predates the revocation.
        let dropped = try await store.dropSupersededOutbox(target: "gateway")
        #expect(dropped.count == 1)
        let due = try await store.pendingOutbox(target: "gateway", dueBy: later, limit: 10)
        #expect(due.map(\.operation) == [.delete, .put])
        #expect(due.map(\.grant.subject) == ["bob", "alice"])

        // Delivered, the revocation lets carol's newer grant through.
        try await store.markDelivered(ids: [due[0].id])
        let next = try await store.pendingOutbox(target: "gateway", dueBy: later, limit: 10)
        #expect(next.map(\.grant.subject) == ["alice", "carol"])

        // A failed attempt waits for its retry and keeps its place after it.
        try await store.markFailed(id: next[0].id, error: "503", at: later, nextAttemptAt: later.addingTimeInterval(30))
        #expect(try await store.pendingOutbox(target: "gateway", dueBy: later, limit: 10).map(\.grant.subject) == ["carol"])
        #expect(try await store.nextOutboxAttempt(target: "gateway", after: later) == later.addingTimeInterval(30))
        #expect(try await store.outboxBacklog(target: "gateway").pending == 2)
    }

    /// What a decision reads inside one ``StateReading/inspect(_:)`` is one state: a commit
    /// that lands between two of its reads is not seen by the second.
    @Test(arguments: Backend.allCases)
    func aDecisionsReadsSeeOneStateWhileACommitLands(_ backend: Backend) async throws {
        let store = try await backend.make()
        try await store.commit(Sample.granting([Sample.grant("alice")], identities: [Sample.identity("alice")]))
        // The inspection signals after its first read and waits (off the cooperative pool, on
        // the backend's reader) until the commit landed; both waits are bounded.
        let firstRead = DispatchSemaphore(value: 0)
        let landed = DispatchSemaphore(value: 0)
        let committing = Task.detached {
            await withCheckedContinuation { (resumed: CheckedContinuation<Void, Never>) in
                DispatchQueue.global().async {
                    _ = firstRead.wait(timeout: .now() + 20)
                    resumed.resume()
                }
            }
            defer { landed.signal() }
            try await store.commit(Sample.granting([Sample.grant("bob")], identities: [Sample.identity("bob")]))
        }
        let reads = try await store.inspect { reads in
            let before = (try reads.grantCount(), try reads.identity(userName: "bob"))
            firstRead.signal()
            _ = landed.wait(timeout: .now() + 20)
            let after = (try reads.grantCount(), try reads.identity(userName: "bob"))
            return (before.0, before.1 == nil, after.0, after.1 == nil)
        }
        _ = try await committing.value
        #expect(reads.0 == 1 && reads.1)
        #expect(reads.2 == 1 && reads.3, "the second read saw a commit made after the first")
        #expect(try await store.grantCount() == 2)
    }

    /// Exceptions commit with the changeset that makes them, end with the one that ends them,
    /// keep the order they were made in, and are read by subject inside a decision.
    @Test(arguments: Backend.allCases)
    func exceptionsAreKeptInOrderReadBySubjectAndEndedByID(_ backend: Backend) async throws {
        let store = try await backend.make()
        func exception(_ id: String, _ subject: String, _ effect: AccessException.Effect, until: Date?) -> AccessException {
            AccessException(
                id: id, effect: effect, subject: subject, agent: "support-copilot", scope: "tickets:read",
                resource: "zendesk:queue/*", until: until, reason: "why \(id)", approver: "operator:root", createdAt: Sample.time)
        }
        let made = [
            exception("x_2", "bob", .grant, until: Sample.time.addingTimeInterval(60)),
            exception("x_1", "alice", .deny, until: nil),
            exception("x_3", "alice", .grant, until: Sample.time.addingTimeInterval(120)),
        ]
        var changeset = Sample.granting([Sample.grant("alice")], identities: [Sample.identity("alice")])
        changeset.exceptions = made
        try await store.commit(changeset)
        #expect(try await store.exceptions() == made)
        #expect(try await store.inspect { try $0.exceptions(subjects: ["alice"]) }.map(\.id) == ["x_1", "x_3"])
        #expect(try await store.inspect { try $0.exceptions(subjects: []) }.isEmpty)
        #expect(try await store.inspect { try $0.exceptions(subjects: nil) }.map(\.id) == ["x_2", "x_1", "x_3"])

        // An id made twice is refused with everything else in its commit.
        var twice = Sample.granting([Sample.grant("bob")], identities: [Sample.identity("bob")])
        twice.exceptions = [exception("x_1", "bob", .grant, until: nil)]
        await #expect(throws: StoreError.self) { try await store.commit(twice) }
        #expect(try await store.grants(subject: "bob", agent: nil).isEmpty)

        var ending = Changeset(time: Sample.time)
        ending.endedExceptions = ["x_1"]
        try await store.commit(ending)
        #expect(try await store.exceptions().map(\.id) == ["x_2", "x_3"])
    }

    /// Review campaigns and items commit with their changeset and are replaced whole; who
    /// answers for an item is fixed when it is first written, and reads by reviewer see only
    /// their items, in number order.
    @Test(arguments: Backend.allCases)
    func reviewCampaignsAndItemsAreStoredWholeAndReadByReviewer(_ backend: Backend) async throws {
        let store = try await backend.make()
        var campaign = ReviewCampaign(
            id: "r_1", name: "Q4", scope: .agent("support-copilot"), reviewer: .sponsor, due: Sample.time.addingTimeInterval(86_400),
            ifNoAnswer: .keep, unusedAfter: 30 * 86_400, createdAt: Sample.time, createdBy: "operator:root",
            linkKey: Data(repeating: 7, count: 32))
        func item(_ number: Int, _ subject: String, reviewers: [String]) -> ReviewItem {
            ReviewItem(
                campaign: "r_1", number: number, subject: subject, subjectName: subject.capitalized, agent: "support-copilot",
                grants: [ReviewedGrant(grant: Sample.grant(subject).grant, policy: "support-tickets", grantedAt: Sample.time, lastUsed: nil)],
                reviewers: reviewers, recommendation: .revoke, recommendationReason: "never used")
        }
        var changeset = Changeset(time: Sample.time)
        changeset.reviewCampaigns = [campaign]
        changeset.reviewItems = [item(2, "bob", reviewers: ["jdoe"]), item(1, "alice", reviewers: ["jdoe", "boss"]), item(3, "carol", reviewers: [])]
        try await store.commit(changeset)
        #expect(try await store.reviewCampaign(id: "r_1") == campaign)
        #expect(try await store.reviewItems(campaign: "r_1").map(\.number) == [1, 2, 3])
        #expect(try await store.reviewItems(campaign: "r_1", reviewer: "jdoe").map(\.subject) == ["alice", "bob"])
        #expect(try await store.reviewItems(campaign: "r_1", reviewer: "boss").map(\.subject) == ["alice"])
        #expect(try await store.reviewItems(campaign: "r_1", reviewer: "carol").isEmpty)
        #expect(try await store.reviewCounts(campaign: "r_1") == ReviewCounts(items: 3, decided: 0, unassigned: 1))
        #expect(try await store.reviewCounts(campaign: "r_9") == ReviewCounts(items: 0, decided: 0, unassigned: 0))

        var decided = item(2, "bob", reviewers: ["jdoe"])
        decided.decision = ReviewItem.Decision(verdict: .revoke, reviewer: "jdoe", note: "left the team", time: Sample.time)
        campaign.status = .closed
        campaign.closedAt = Sample.time
        var closing = Changeset(time: Sample.time)
        closing.reviewCampaigns = [campaign]
        closing.reviewItems = [decided]
        try await store.commit(closing)
        #expect(try await store.reviewCampaign(id: "r_1")?.status == .closed)
        #expect(try await store.inspect { try $0.reviewItem(campaign: "r_1", number: 2) } == decided)
        #expect(try await store.reviewItems(campaign: "r_1", reviewer: "jdoe").map(\.number) == [1, 2])
        #expect(try await store.reviewCampaigns().map(\.id) == ["r_1"])
        #expect(try await store.reviewCounts(campaign: "r_1") == ReviewCounts(items: 3, decided: 1, unassigned: 1))
        #expect(try await store.inspect { try $0.reviewItem(campaign: "r_1", number: 9) } == nil)
    }
}
