import Foundation
import Logging
import MetricsTestKit
import Synchronization
import Testing
import TetherConfig
import TetherCore
import TetherEngine
import TetherStore
@testable import TetherTargets

/// A real engine over a real SQLite file in a temporary folder, feeding HTTP targets.
///
/// One delegated agent, `copilot`, sponsored by `jdoe`; the `support` policy grants it
/// `tickets:read` and `tickets:write` on `zendesk:queue/{department}` to everyone in Support
/// or Success. So a joiner adds two grants, a leaver removes two, a mover swaps two for two.
final class World: Sendable {
    let folder: URL
    let store: SQLiteStateStore
    let engine: Engine
    let metrics = TestMetrics()
    private let versions = Mutex(0)

    static let policySet = PolicySet(
        agents: [Agent(id: "copilot", kind: .delegated, sponsor: "jdoe")],
        policies: [
            Policy(
                id: "support",
                when: .attribute(name: "department", test: .in(["Support", "Success"])),
                grant: [GrantTemplate(agent: "copilot", scopes: ["tickets:read", "tickets:write"], resource: "zendesk:queue/{department}")])
        ])

    init(targets: [String], safety: SafetyLimits = SafetyLimits(maxRevocationsPerRun: 10_000, maxRevocationRatio: 1, minGrantsForRatio: 1_000_000)) throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("tether-targets-\(UUID().uuidString)")
        store = try SQLiteStateStore(path: folder.appendingPathComponent("tether.db").path)
        engine = Engine(
            store: store, configuration: EngineConfiguration(policySet: Self.policySet, safety: safety, targets: targets))
    }

    /// An LDAP record for `user` in `department`, as a mover event with a fresh version.
    func ldap(_ user: String, department: String, status: IdentityStatus = .active) async throws {
        let version = versions.withLock { value in
            value += 1
            return value
        }
        let facts = IdentityFacts(
            externalId: "uuid-\(user)", userName: user, email: "\(user)@example.com", department: department,
            status: status, version: String(format: "2026-11-28T10:%02d:%02d.000000Z", version / 60, version % 60))
        let event = LifecycleEvent(
            id: "ldap:\(user):\(version)", source: .ldap, kind: .mover, occurredAt: Date(), facts: facts,
            isExplicitLeaver: false)
        _ = try await engine.submit(event)
    }

    /// Seeds the sponsor, who is in Support herself: two grants.
    func seed() async throws {
        try await ldap("jdoe", department: "Support")
        try await engine.reconcile(origin: .other, actor: .policy)
    }

    func grants() async throws -> [Grant] {
        try await store.grants(subject: nil, agent: nil).map(\.grant)
    }

    func grantIDs() async throws -> Set<String> { Set(try await grants().map(\.id)) }

    func pending(_ target: String) async throws -> [OutboxEntry] {
        try await store.outbox(target: target)
    }

    func audit() async throws -> [AuditRecord] { try await store.auditRecords(AuditQuery()) }

    func target(_ fake: FakeTarget, id: String, orphans: OrphanPolicy = .revoke, timeout: Duration = .seconds(2)) throws -> HTTPGrantTarget {
        try HTTPGrantTarget(
            configuration: TargetConfiguration(id: id, url: fake.url, secretFile: "/nonexistent", orphans: orphans, timeout: timeout),
            secret: fake.secret)
    }

    /// A deliverer with tiny backoff, so retries happen in milliseconds.
    func deliverer(_ target: any GrantTarget, retry: RetryPolicy = .fast) -> OutboxDeliveryService {
        OutboxDeliveryService(
            target: target, store: store, retry: retry, batchSize: 50, pollInterval: .seconds(5), logger: .quiet,
            metricsFactory: metrics)
    }

    func delivered(_ target: String) -> Int64 {
        (try? metrics.expectCounter("tether_outbox_delivered_total", [("target", target)]).totalValue) ?? 0
    }

    func failures(_ target: String) -> Int64 {
        (try? metrics.expectCounter("tether_outbox_failures_total", [("target", target)]).totalValue) ?? 0
    }
}

extension RetryPolicy {
    static let fast = RetryPolicy(
        initialDelay: .milliseconds(20), maximumDelay: .milliseconds(80), jitter: 0.5, maximumRetryAfter: .seconds(5))
}

extension Logger {
    static var quiet: Logger {
        var logger = Logger(label: "tether-targets-tests")
        logger.logLevel = .critical
        return logger
    }
}

/// Runs `service` in the background until the returned handle is cancelled.
final class Running: Sendable {
    private let task: Task<Void, any Error>

    init(_ service: OutboxDeliveryService) {
        task = Task { try await service.run() }
    }

    func stop() async {
        task.cancel()
        _ = await task.result
    }
}

struct TimedOut: Error, CustomStringConvertible {
    var what: String
    var description: String { "timed out waiting for \(what)" }
}

/// Waits until `condition` holds, checking every few milliseconds, for at most `timeout`:
/// tests wait on outcomes, never on the passing of time.
func eventually(
    _ what: String, timeout: Duration = .seconds(30), _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + timeout
    while try await !condition() {
        guard ContinuousClock.now < deadline else { throw TimedOut(what: what) }
        try await Task.sleep(for: .milliseconds(5))
    }
}
