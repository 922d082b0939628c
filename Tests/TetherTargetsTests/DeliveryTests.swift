import Foundation
import NIOSSL
import ServiceLifecycle
import Testing
import TetherConfig
import TetherCore
import TetherEngine
import TetherStore
@testable import TetherTargets

/// The outbox deliverer against a real HTTP target, a real store and a real engine.
@Suite(.timeLimit(.minutes(1)))
struct DeliveryTests {
    @Test func grantsAndRevocationsArriveAsSignedPutAndDelete() async throws {
        let fake = FakeTarget()
        try await fake.start()
        let world = try World(targets: ["gw"])
        try await world.seed()
        try await world.ldap("alice", department: "Support")
        let rows = try await world.pending("gw")
        #expect(rows.map(\.operation) == [.put, .put, .put, .put])

        let deliverer = Running(world.deliverer(try world.target(fake, id: "gw")))
        try await eventually("four grants delivered") { try await world.pending("gw").isEmpty }
        let puts = fake.requests
        #expect(puts.count == 4)
        for (request, row) in zip(puts, rows) {
            #expect(request.method == "PUT")
            #expect(request.path == "/grants/\(row.grantID)")
            #expect(request.signatureValid)
            #expect(request.headers["idempotency-key"] == "gw:\(row.id)")
            #expect(request.headers["content-type"] == "application/json")
            #expect(request.answer == "201")
            let expected = [
                "subject": row.grant.subject, "agent": row.grant.agent, "scope": row.grant.scope,
                "resource": row.grant.resource, "id": row.grantID,
            ]
            #expect(request.json == expected)
            // The raw body is the canonical form: keys sorted, no spaces.
            #expect(String(decoding: request.body, as: UTF8.self).hasPrefix("{\"agent\":\"copilot\",\"id\":\"g_"))
            let signature = try #require(request.headers["tether-signature"])
            let t = try #require(signature.split(separator: ",").first.flatMap { Int64($0.dropFirst(2)) })
            #expect(abs(Double(t) - Date().timeIntervalSince1970) < 60)
            let v2 = TargetSignature(secret: fake.secret).mac(
                method: "PUT", target: request.path, idempotencyKey: "gw:\(row.id)", body: request.body, timestamp: t)
            #expect(signature == "t=\(t),v2=\(v2)")
        }
        #expect(Set(fake.held.keys) == (try await world.grantIDs()))

        fake.forgetRequests()
        let aliceGrants = try await world.store.grants(subject: "alice", agent: nil).map(\.id)
        try await world.ldap("alice", department: "Support", status: .terminated)
        try await eventually("two revocations delivered") { try await world.pending("gw").isEmpty && fake.requests.count == 2 }
        let deletes = fake.requests
        #expect(deletes.map(\.method) == ["DELETE", "DELETE"])
        #expect(Set(deletes.map(\.grantID)) == Set(aliceGrants))
        #expect(deletes.allSatisfy { $0.body.isEmpty && $0.signatureValid && $0.answer == "204" })
        #expect(deletes.allSatisfy { $0.headers["idempotency-key"]?.hasPrefix("gw:") == true })
        #expect(Set(fake.held.keys) == (try await world.grantIDs()))
        #expect(world.delivered("gw") == 6)
        #expect(world.failures("gw") == 0)
        await deliverer.stop()
        await fake.stop()
    }

    @Test func revocationsGoFirstAndAGrantRevokedSinceIsNeverSent() async throws {
        let fake = FakeTarget()
        try await fake.start()
        let world = try World(targets: ["gw"])
        try await world.seed()
        // While nothing delivers: alice joins, bob joins, then alice moves to Success. Her
        // Support grants are revoked after they were queued, so they must never be sent.
        try await world.ldap("alice", department: "Support")
        let aliceSupport = Set(try await world.store.grants(subject: "alice", agent: nil).map(\.id))
        try await world.ldap("bob", department: "Support")
        try await world.ldap("alice", department: "Success")
        let queued = try await world.pending("gw")
        #expect(queued.map(\.operation.rawValue) == ["put", "put", "put", "put", "put", "put", "delete", "delete", "put", "put"])

        let deliverer = Running(world.deliverer(try world.target(fake, id: "gw")))
        try await eventually("outbox drained") { try await world.pending("gw").isEmpty }
        let sent = fake.requests
        #expect(sent.prefix(2).map(\.method) == ["DELETE", "DELETE"])
        #expect(sent.dropFirst(2).allSatisfy { $0.method == "PUT" })
        #expect(Set(sent.prefix(2).map(\.grantID)) == aliceSupport)
        // Never sent as granted: the revocation superseded them before delivery.
        #expect(!sent.contains { $0.method == "PUT" && aliceSupport.contains($0.grantID) })
        // The target never had them: 404 on DELETE counts as done.
        #expect(sent.prefix(2).allSatisfy { $0.answer == "404" })
        #expect(sent.count == 8)
        #expect(Set(fake.held.keys) == (try await world.grantIDs()))
        #expect(try world.metrics.expectCounter("tether_outbox_superseded_total", [("target", "gw")]).totalValue == 2)
        await deliverer.stop()
        await fake.stop()
    }

    /// Every way a target fails: the rows stay, attempts and errors are recorded, retries back
    /// off; after recovery every change the outbox held is delivered in order, none lost.
    @Test(arguments: [Failure.status500, .timeout, .reset, .down])
    func failuresKeepTheChangeAndRetryUntilDelivered(_ failure: Failure) async throws {
        let fake = FakeTarget()
        try await fake.start()
        let world = try World(targets: ["gw"])
        try await world.seed()
        try await world.ldap("alice", department: "Support")
        // The first grants go out under a generous timeout: on a loaded machine a first
        // connection can take longer than 200 ms, and every retry would then time out too.
        let first = Running(world.deliverer(try world.target(fake, id: "gw", timeout: .seconds(5))))
        try await eventually("first grants delivered") { try await world.pending("gw").isEmpty }
        await first.stop()
        // Short only where the timeout is the fault: a 500 or a reset can take longer than
        // 200 ms to arrive there too, and would then be recorded as a timeout.
        let timeout: Duration = failure == .timeout ? .milliseconds(200) : .seconds(5)
        let deliverer = Running(world.deliverer(try world.target(fake, id: "gw", timeout: timeout)))
        let aliceGrants = Set(try await world.store.grants(subject: "alice", agent: nil).map(\.id))

        switch failure {
        case .status500: fake.behaviour = .fail(status: 500)
        case .timeout: fake.behaviour = .hang
        case .reset: fake.behaviour = .reset
        case .down: await fake.stop()
        }
        let before = fake.requests.count
        // Changes keep coming while the target fails: a leaver, a joiner, a joiner who leaves.
        try await world.ldap("alice", department: "Support", status: .terminated)
        try await world.ldap("bob", department: "Support")
        try await world.ldap("carol", department: "Success")
        let carolGrants = Set(try await world.store.grants(subject: "carol", agent: nil).map(\.id))
        try await world.ldap("carol", department: "Success", status: .terminated)

        try await eventually("three failed attempts recorded") {
            try await world.pending("gw").map(\.attempts).reduce(0, +) >= 3
        }
        let waiting = try await world.pending("gw")
        let tried = waiting.filter { $0.attempts > 0 }
        #expect(!tried.isEmpty)
        #expect(tried.allSatisfy { $0.lastError != nil && $0.nextAttemptAt != nil })
        // The target saw the failure it was told to produce (a target that is down sees nothing).
        let seen = fake.requests.dropFirst(before)
        switch failure {
        case .status500:
            let failed = seen.filter { $0.answer == "500" }
            #expect(failed.count >= 3)
            // Backoff: never two attempts closer than the smallest jittered wait (10 ms).
            for (earlier, later) in zip(failed, failed.dropFirst()) {
                #expect(later.time.timeIntervalSince(earlier.time) >= 0.009)
            }
        case .timeout: #expect(seen.contains { $0.answer == "hung" })
        case .reset: #expect(seen.contains { $0.answer == "reset" })
        case .down: #expect(seen.isEmpty)
        }
        let marks = failure.errorMark.split(separator: "|")
        #expect(tried.contains { error in marks.contains { error.lastError?.contains($0) == true } }, "\(tried.map { $0.lastError ?? "-" })")
        let revoked = Set(waiting.filter { $0.operation == .delete }.map(\.grantID))
        #expect(revoked == aliceGrants.union(carolGrants))
        #expect(world.delivered("gw") == 4)
        #expect(world.failures("gw") >= 3)

        switch failure {
        case .down: try await fake.restart()
        default: fake.behaviour = .normal
        }
        try await eventually("outbox drained after recovery") { try await world.pending("gw").isEmpty }
        let answered = fake.requests.filter { ["200", "201", "204", "404"].contains($0.answer) }
        // Every revocation the outbox held reached the target.
        for grant in revoked {
            #expect(answered.contains { $0.method == "DELETE" && $0.grantID == grant })
        }
        // No grant was delivered as granted after its revocation; carol's never at all.
        for grant in revoked {
            let lastDelete = try #require(answered.lastIndex { $0.method == "DELETE" && $0.grantID == grant })
            #expect(!answered[lastDelete...].contains { $0.method == "PUT" && $0.grantID == grant })
        }
        #expect(!answered.contains { $0.method == "PUT" && carolGrants.contains($0.grantID) })
        #expect(Set(fake.held.keys) == (try await world.grantIDs()))
        #expect(answered.allSatisfy { $0.signatureValid })
        await deliverer.stop()
        await fake.stop()
    }

    enum Failure: String, CustomTestStringConvertible, Sendable {
        case status500, timeout, reset, down
        var testDescription: String { rawValue }

        /// What the stored error says.
        var errorMark: String {
            switch self {
            case .status500: "HTTP 500"
            case .timeout: "no complete answer in time"
            // Only each row's last error is kept, and on a loaded machine the 200 ms limit can
            // pass before a reset or a refusal arrives: then the last error is the timeout
            // (the fake target's own record shows the reset it sent).
            case .reset: "connection|no complete answer in time"
            // A keep-alive connection the stopped server closed fails first ("connection closed"),
            // new connections are refused ("cannot connect"): both are the target being down.
            case .down: "connect|no complete answer in time"
            }
        }
    }

    @Test func gracefulShutdownStopsTheDeliverer() async throws {
        let fake = FakeTarget()
        try await fake.start()
        let world = try World(targets: ["gw"])
        let service = world.deliverer(try world.target(fake, id: "gw"))
        let group = ServiceGroup(configuration: .init(services: [service], logger: .quiet))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            try await world.seed()
            try await eventually("delivered") { try await world.pending("gw").isEmpty }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        // Changes committed after the stop wait in the outbox for the next start.
        try await world.ldap("alice", department: "Support")
        #expect(try await world.pending("gw").count == 2)
        await fake.stop()
    }

    @Test func aRefusedRevocationIsRetriedAndHoldsBackLaterGrantsOnly() async throws {
        let fake = FakeTarget()
        try await fake.start()
        let world = try World(targets: ["gw"])
        let deliverer = Running(world.deliverer(try world.target(fake, id: "gw")))
        try await world.seed()
        try await eventually("seeded") { try await world.pending("gw").isEmpty }
        let old = try await world.store.grants(subject: "jdoe", agent: nil).map(\.id)
        fake.refuse([old[0]])
        // A mover: two revocations, then two grants; the target refuses the first revocation.
        try await world.ldap("jdoe", department: "Success")
        let new = Set(try await world.store.grants(subject: "jdoe", agent: nil).map(\.id))
        try await eventually("the refused revocation retried") {
            try await world.pending("gw").first { $0.grantID == old[0] }.map { $0.attempts >= 2 } ?? false
        }
        // The other revocation went through; the grants wait behind the refused one.
        #expect(fake.held[old[1]] == nil)
        #expect(!fake.requests.contains { $0.method == "PUT" && new.contains($0.grantID) })
        let refused = try #require(try await world.pending("gw").first { $0.grantID == old[0] })
        #expect(refused.lastError?.contains("HTTP 422") == true)
        #expect(Set(try await world.pending("gw").map(\.grantID)) == new.union([old[0]]))

        fake.refuse([])
        try await eventually("delivered once accepted") { try await world.pending("gw").isEmpty }
        #expect(Set(fake.held.keys) == new)
        await deliverer.stop()
        await fake.stop()
    }

    @Test func deliverersAreBuiltFromConfigurationWithTheirSecretFiles() async throws {
        let fake = FakeTarget(secret: "from-a-file")
        try await fake.start()
        let world = try World(targets: ["gw"])
        let secretFile = world.folder.appendingPathComponent("gw.secret").path
        try Data("from-a-file\n".utf8).write(to: URL(fileURLWithPath: secretFile))
        let configuration = TargetConfiguration(id: "gw", url: fake.url, secretFile: secretFile)
        let services = try OutboxDeliveryService.services(for: [configuration], store: world.store, logger: .quiet)
        #expect(services.map(\.target.id) == ["gw"])
        let deliverer = Running(try #require(services.first))
        try await world.seed()
        try await eventually("delivered, signed with the file's secret") { try await world.pending("gw").isEmpty }
        #expect(fake.requests.allSatisfy { $0.signatureValid })

        let missing = TargetConfiguration(id: "gw", url: fake.url, secretFile: "/nonexistent/gw.secret")
        #expect(throws: TargetError.self) { try HTTPGrantTarget(configuration: missing) }
        let badURL = TargetConfiguration(id: "gw", url: "gateway:9400", secretFile: secretFile)
        #expect(throws: TargetError.self) { try HTTPGrantTarget(configuration: badURL) }
        await deliverer.stop()
        await fake.stop()
    }

    @Test func retryAfterIsHonoured() async throws {
        let fake = FakeTarget()
        try await fake.start()
        let world = try World(targets: ["gw"])
        fake.behaviour = .failNext(count: 1, status: 503, retryAfter: "1")
        let deliverer = Running(world.deliverer(try world.target(fake, id: "gw")))
        try await world.seed()
        try await eventually("outbox drained") { try await world.pending("gw").isEmpty }
        let requests = fake.requests
        #expect(requests.first?.answer == "503")
        let retry = try #require(requests.dropFirst().first)
        // Backoff alone would retry within 80 ms; the target asked for a second.
        #expect(retry.time.timeIntervalSince(requests[0].time) >= 0.95)
        #expect(world.failures("gw") == 1)
        await deliverer.stop()
        await fake.stop()
    }

    @Test func retryAfterAsAnHTTPDateIsHonoured() async throws {
        let now = Date(timeIntervalSince1970: 1_795_000_000)
        #expect(RetryAfter.parse("Wed, 18 Nov 2026 11:06:40 GMT", now: now) == .seconds(0))
        #expect(RetryAfter.parse("Wed, 18 Nov 2026 11:07:10 GMT", now: now) == .seconds(30))
        #expect(RetryAfter.parse("120", now: now) == .seconds(120))
        #expect(RetryAfter.parse("soon", now: now) == nil)
        #expect(RetryPolicy(maximumRetryAfter: .seconds(60)).delay(afterAttempt: 1, retryAfter: .seconds(86_400)) == .seconds(60))
    }

    @Test func oneFailingTargetDoesNotDelayAnother() async throws {
        let stuck = FakeTarget()
        let healthy = FakeTarget()
        try await stuck.start()
        try await healthy.start()
        stuck.behaviour = .hang
        let world = try World(targets: ["stuck", "healthy"])
        // The stuck target's request hangs for longer than the wait below: the healthy one is
        // served while it hangs, however loaded the machine.
        let a = Running(world.deliverer(try world.target(stuck, id: "stuck", timeout: .seconds(120))))
        let b = Running(world.deliverer(try world.target(healthy, id: "healthy")))
        try await world.seed()
        try await world.ldap("alice", department: "Support")
        try await eventually("healthy target served") { try await world.pending("healthy").isEmpty }
        #expect(healthy.held.count == 4)
        // The other target still holds its first request and nothing was delivered to it.
        #expect(stuck.requests.count == 1)
        #expect(try await world.pending("stuck").count == 4)
        stuck.behaviour = .normal
        await a.stop()
        await b.stop()
        await stuck.stop()
        await healthy.stop()
    }

    @Test func aCommitWakesTheDelivererAtOnce() async throws {
        let fake = FakeTarget()
        try await fake.start()
        let world = try World(targets: ["gw"])
        // A poll interval far beyond the test's limit: only the store's signal can wake it.
        let service = OutboxDeliveryService(
            target: try world.target(fake, id: "gw"), store: world.store, retry: .fast, pollInterval: .seconds(3600),
            logger: .quiet, metricsFactory: world.metrics)
        let deliverer = Running(service)
        try await eventually("the deliverer idle after its first pass") { service.passes >= 1 }
        try await world.seed()
        try await eventually("delivered after the commit") { fake.held.count == 2 }
        await deliverer.stop()
        await fake.stop()
    }

    @Test func httpsTargetsAreVerifiedAndServed() async throws {
        let host = FakeTarget.loopbackAddress()
        let tls = try TestCertificate.make(ip: host)
        let fake = FakeTarget(tls: tls.server, host: host)
        try await fake.start()
        let world = try World(targets: ["gw"])
        var client = TLSConfiguration.makeClientConfiguration()
        client.trustRoots = .certificates([tls.certificate])
        let target = try HTTPGrantTarget(
            configuration: TargetConfiguration(id: "gw", url: fake.url, secretFile: "/nonexistent"), secret: fake.secret,
            tls: client)
        let deliverer = Running(world.deliverer(target))
        try await world.seed()
        try await eventually("delivered over TLS") { try await world.pending("gw").isEmpty }
        #expect(fake.held.count == 2)
        #expect(fake.requests.allSatisfy { $0.signatureValid })

        // A client that does not trust the certificate never sends anything.
        let untrusting = try HTTPGrantTarget(
            configuration: TargetConfiguration(id: "gw", url: fake.url, secretFile: "/nonexistent"), secret: fake.secret)
        let before = fake.requests.count
        let outcome = await untrusting.deliver(try #require(try await world.store.grants(subject: nil, agent: nil).first).asChange)
        guard case .unavailable = outcome else {
            Issue.record("expected the untrusted target to be unavailable, got \(outcome)")
            return
        }
        #expect(fake.requests.count == before)
        await deliverer.stop()
        await fake.stop()
    }
}

extension StoredGrant {
    var asChange: OutboxEntry {
        OutboxEntry(id: 1, target: "gw", grantID: id, operation: .put, grant: grant, createdAt: Date(), attempts: 0)
    }
}
