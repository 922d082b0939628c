import Foundation
import Testing
import TetherCore
import TetherStore
@testable import TetherTargets

/// The store's side of delivery: order, supersession, retries and the commit signal.
@Suite struct OutboxOrderTests {
    static let now = Date(timeIntervalSince1970: 1_795_000_000)

    static func grant(_ subject: String) -> JustifiedGrant {
        JustifiedGrant(
            grant: Grant(subject: subject, agent: "copilot", scope: "tickets:read", resource: "zendesk:queue/Support"),
            lineage: Lineage(policy: "support", policySet: "sha256:x"))
    }

    static func commit(_ store: SQLiteStateStore, _ steps: [PlanStep], targets: [String] = ["gw"]) async throws {
        var changeset = Changeset(time: now)
        changeset.steps = steps
        changeset.targets = targets
        _ = try await store.commit(changeset)
    }

    static func store() throws -> SQLiteStateStore {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tether-outbox-\(UUID().uuidString)")
        return try SQLiteStateStore(path: folder.appendingPathComponent("tether.db").path)
    }

    @Test func revocationsComeFirstAndGrantsWaitBehindOlderRevocations() async throws {
        let store = try Self.store()
        let (a, b, c, d) = (Self.grant("a"), Self.grant("b"), Self.grant("c"), Self.grant("d"))
        try await Self.commit(store, [.grant(a, reason: ""), .grant(b, reason: "")])  // 1, 2
        try await Self.commit(store, [.revoke(b, reason: "")])  // 3
        try await Self.commit(store, [.grant(c, reason: "")])  // 4
        try await Self.commit(store, [.revoke(a, reason: "")])  // 5
        try await Self.commit(store, [.grant(d, reason: "")], targets: ["other"])  // another target's row
        #expect(try await store.dropSupersededOutbox(target: "gw") == [1, 2])
        let order = try await store.pendingOutbox(target: "gw", dueBy: Self.now, limit: 10)
        // Revocations first; c was granted after b's revocation, so it waits until that is delivered.
        #expect(order.map(\.id) == [3, 5])
        try await store.markDelivered(ids: [3])
        // c is older than a's revocation: it may go, after it.
        #expect(try await store.pendingOutbox(target: "gw", dueBy: Self.now, limit: 10).map(\.id) == [5, 4])
        try await store.markDelivered(ids: [5])
        #expect(try await store.pendingOutbox(target: "gw", dueBy: Self.now, limit: 10).map(\.id) == [4])
        #expect(try await store.pendingOutbox(target: "other", dueBy: Self.now, limit: 10).map(\.grantID) == [d.grant.id])
    }

    @Test func aRowWaitingForItsRetryKeepsItsPlaceAndItsHistory() async throws {
        let store = try Self.store()
        let (a, b) = (Self.grant("a"), Self.grant("b"))
        try await Self.commit(store, [.grant(a, reason: "")])  // 1
        try await Self.commit(store, [.revoke(b, reason: "")])  // 2
        try await Self.commit(store, [.grant(b, reason: "")])  // 3
        let retry = Self.now.addingTimeInterval(30)
        try await store.markFailed(id: 2, error: "DELETE /grants/x: HTTP 500", at: Self.now, nextAttemptAt: retry)
        // Not due: not sent; and the grant queued after it still waits behind it.
        #expect(try await store.pendingOutbox(target: "gw", dueBy: Self.now, limit: 10).map(\.id) == [1])
        #expect(try await store.nextOutboxAttempt(target: "gw", after: Self.now) == retry)
        let later = try await store.pendingOutbox(target: "gw", dueBy: retry, limit: 10)
        #expect(later.map(\.id) == [2, 1])
        #expect(later.first?.attempts == 1)
        #expect(later.first?.lastError == "DELETE /grants/x: HTTP 500")
        #expect(later.first?.nextAttemptAt == retry)
        // Status counts only what is still pending.
        try await store.markDelivered(ids: [1, 2])
        #expect(try await store.outbox(target: "gw").map(\.id) == [3])
    }

    @Test func everyCommitThatAddsRowsWakesTheDeliverers() async throws {
        let store = try Self.store()
        let signals = store.outboxInsertions()
        var iterator = signals.makeAsyncIterator()
        try await Self.commit(store, [.grant(Self.grant("a"), reason: "")])
        #expect(await iterator.next() != nil)
        // A commit with no target rows does not ring.
        try await Self.commit(store, [.grant(Self.grant("b"), reason: "")], targets: [])
        try await store.markDelivered(ids: [1])
        try await Self.commit(store, [.grant(Self.grant("c"), reason: "")])
        #expect(await iterator.next() != nil)
        #expect(try await store.outbox(target: "gw").map(\.grantID) == [Self.grant("c").grant.id])
    }

    @Test func backoffGrowsToItsCapWithBoundedJitter() {
        let policy = RetryPolicy(initialDelay: .seconds(1), maximumDelay: .seconds(60), multiplier: 2, jitter: 0.2)
        var random = SystemRandomNumberGenerator()
        for (attempt, base) in [(1, 1.0), (2, 2.0), (3, 4.0), (7, 60.0), (100, 60.0)] {
            for _ in 0..<50 {
                let delay = RetryPolicy.seconds(policy.delay(afterAttempt: attempt, using: &random))
                #expect(delay <= base + 0.001)
                #expect(delay >= base * 0.8 - 0.001)
            }
        }
        #expect(policy.delay(afterAttempt: 3, retryAfter: .seconds(7)) == .seconds(7))
        // Retry-After: 0 is not a licence to hammer the target.
        #expect(policy.delay(afterAttempt: 3, retryAfter: .zero) == .seconds(1))
    }

    @Test func aTargetsMaxBackoffCapsTheWait() {
        let policy = RetryPolicy(jitter: 0)
        #expect(policy.capped(at: nil) == policy)
        let capped = policy.capped(at: .seconds(3))
        var random = SystemRandomNumberGenerator()
        #expect((1...12).map { capped.delay(afterAttempt: $0, using: &random) }.max() == .seconds(3))
        #expect(policy.delay(afterAttempt: 12, using: &random) == .seconds(300))
        // A cap below the first step shortens the first wait too.
        #expect(policy.capped(at: .milliseconds(200)).delay(afterAttempt: 1, using: &random) == .milliseconds(200))
    }

    @Test func theV2SignatureCoversTimeMethodPathKeyAndBody() {
        let time = Date(timeIntervalSince1970: 1_700_000_000)
        let signature = TargetSignature(secret: Array("secret".utf8))
        let header = signature.header(method: "PUT", target: "/grants/g1", idempotencyKey: "gw:7", body: Array("{}".utf8), at: time)
        // HMAC-SHA256("secret", "1700000000\nPUT\n/grants/g1\ngw:7\n{}"), computed independently with openssl.
        #expect(header == "t=1700000000,v2=" + Self.opensslHMAC(secret: "secret", message: "1700000000\nPUT\n/grants/g1\ngw:7\n{}"))
        // A page read carries no key: its line is empty.
        #expect(
            signature.header(method: "GET", target: "/grants?cursor=2", idempotencyKey: nil, body: [UInt8](), at: time)
                == "t=1700000000,v2=" + Self.opensslHMAC(secret: "secret", message: "1700000000\nGET\n/grants?cursor=2\n\n"))
        // While a target moves over, v1 (the HR webhook's scheme) can ride along.
        let both = TargetSignature(secret: Array("secret".utf8), includesV1: true)
            .header(method: "PUT", target: "/grants/g1", idempotencyKey: "gw:7", body: Array("{}".utf8), at: time)
        #expect(both == "t=1700000000,v1=\(Self.opensslHMAC(secret: "secret", message: "1700000000.{}")),v2="
            + Self.opensslHMAC(secret: "secret", message: "1700000000\nPUT\n/grants/g1\ngw:7\n{}"))
    }

    @Test func whatATargetIsSentVerifiesWithTheOneVerifier() throws {
        let time = Date(timeIntervalSince1970: 1_700_000_000)
        let body = Array("{}".utf8)
        let header = TargetSignature(secret: Array("secret".utf8), includesV1: true)
            .header(method: "PUT", target: "/grants/g1", idempotencyKey: "gw:7", body: body, at: time)
        let parsed = try TetherSignature.Header(parsing: header, requiring: .v2, now: time, tolerance: .seconds(300))
        let secrets = [TetherSignature(secret: Array("secret".utf8))]
        try parsed.verifyV2(method: "PUT", target: "/grants/g1", idempotencyKey: "gw:7", body: body, secrets: secrets)
        try parsed.verifyV1(body: body, secrets: secrets)
        #expect(throws: TetherSignature.Failure.mismatch(scheme: .v2, signatures: 1)) {
            try parsed.verifyV2(method: "DELETE", target: "/grants/g1", idempotencyKey: "gw:7", body: body, secrets: secrets)
        }
        #expect(throws: TetherSignature.Failure.mismatch(scheme: .v2, signatures: 1)) {
            try parsed.verifyV2(method: "PUT", target: "/grants/g1", idempotencyKey: "gw:8", body: body, secrets: secrets)
        }
    }

    @Test func aTargetSecretFileIsReadByTheOneRule() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("target-secret-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("gateway.secret").path
        try "s3cret\r\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try TargetSignature.readSecret(path: path, target: "gw") == Array("s3cret".utf8))
        // Only whitespace is no secret: refused by path, like every other secret file.
        try "  \t\n".write(toFile: path, atomically: true, encoding: .utf8)
        let error = #expect(throws: TargetError.self) { try TargetSignature.readSecret(path: path, target: "gw") }
        #expect(error?.description.contains("\(path) is empty") == true, "\(String(describing: error))")
        let missing = folder.appendingPathComponent("absent").path
        let unreadable = #expect(throws: TargetError.self) { try TargetSignature.readSecret(path: missing, target: "gw") }
        #expect(unreadable?.description.contains("\(missing) cannot be read") == true)
    }

    @Test func aSignedRequestCannotBeReplayedAsAnother() {
        let fake = FakeTarget(secret: "gateway-secret")
        let signature = TargetSignature(secret: Array("gateway-secret".utf8))
        let read = signature.header(method: "GET", target: "/grants", idempotencyKey: nil, body: [UInt8](), at: Date())
        #expect(fake.verify(read, method: "GET", target: "/grants", idempotencyKey: nil, body: []))
        // The same header on a revocation, another grant, another key or another body fails.
        #expect(!fake.verify(read, method: "DELETE", target: "/grants", idempotencyKey: nil, body: []))
        #expect(!fake.verify(read, method: "DELETE", target: "/grants/g1", idempotencyKey: "gw:1", body: []))
        let revoke = signature.header(method: "DELETE", target: "/grants/g1", idempotencyKey: "gw:1", body: [UInt8](), at: Date())
        #expect(fake.verify(revoke, method: "DELETE", target: "/grants/g1", idempotencyKey: "gw:1", body: []))
        #expect(!fake.verify(revoke, method: "DELETE", target: "/grants/g2", idempotencyKey: "gw:1", body: []))
        #expect(!fake.verify(revoke, method: "DELETE", target: "/grants/g1", idempotencyKey: "gw:2", body: []))
        #expect(!fake.verify(revoke, method: "PUT", target: "/grants/g1", idempotencyKey: "gw:1", body: Array("{}".utf8)))
    }

    static func opensslHMAC(secret: String, message: String) -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl", "dgst", "-sha256", "-hmac", secret, "-r"]
        let input = Pipe()
        let output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        try? process.run()
        input.fileHandleForWriting.write(Data(message.utf8))
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return String(text.prefix(64))
    }

    @Test func driftIsComparedByGrantIDAndSparesChangesInFlight() {
        let (a, b, c, d) = (Self.grant("a").grant, Self.grant("b").grant, Self.grant("c").grant, Self.grant("d").grant)
        let baseline = TargetBaseline(
            grants: [a.id: a, b.id: b, c.id: c], policies: [a.id: "support", b.id: "support", c.id: "support"],
            waiting: [c.id], auditSeq: 9)
        let drift = TargetDrift.compare(target: "gw", baseline: baseline, held: [a, d, a], orphans: .revoke)
        #expect(drift.orphans == [d])
        #expect(drift.missing == [b])
        #expect(drift.targetGrants == 2)
        #expect(drift.id == TargetDrift.compare(target: "gw", baseline: baseline, held: [d, a], orphans: .revoke).id)
        #expect(drift.id != TargetDrift.compare(target: "gw", baseline: baseline, held: [d, a], orphans: .report).id)
        #expect(drift.steps(policies: baseline.policies, policySet: "").map(\.action) == ["revoke", "grant"])
        let reported = TargetDrift.compare(target: "gw", baseline: baseline, held: [a, d], orphans: .report)
        #expect(reported.steps(policies: [:], policySet: "").map(\.action) == ["grant"])
        #expect(reported.holdReason(safety: SafetyLimits(maxRevocationsPerRun: 0)) == nil)
        #expect(drift.holdReason(safety: SafetyLimits(maxRevocationsPerRun: 0)) != nil)
    }

    @Test func targetURLsAreReadAsTheContractSays() throws {
        let endpoint = try #require(HTTPEndpoint("https://gw.example.com/api/grants/?tenant=7"))
        #expect(endpoint.tls && endpoint.port == 443 && endpoint.basePath == "/api/grants")
        #expect(endpoint.collectionTarget == "/api/grants?tenant=7")
        #expect(endpoint.hostHeader == "gw.example.com")
        #expect(HTTPEndpoint("http://[::1]:9400/grants")?.hostHeader == "[::1]:9400")
        #expect(HTTPEndpoint("ftp://x/grants") == nil)
        #expect(HTTPEndpoint("/grants") == nil)
    }
}
