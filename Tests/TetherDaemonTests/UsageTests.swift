import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import Testing
import TetherCore
import TetherDaemon
import TetherEngine
import TetherStore

/// Usage (SPEC §15): the check index notes last uses, the flusher writes them to the store, and
/// `--unused` and `/metrics` read them back.
@Suite(.serialized) struct UsageTests {
    static let config = OperatorCLITests.withPolicy + "\ncheck: { tokenFile: check.token }\n"
    static let alice = grant("alice")

    static func grant(_ subject: String) -> String {
        Grant(subject: subject, agent: "support-copilot", scope: "tickets:read", resource: "zendesk:queue/Support").id
    }

    static func folder() throws -> URL {
        try DaemonProcess.folder(files: ["hr.secret": "secret-one", "check.token": "check-token-usage"])
    }

    static func rows(_ daemon: InProcessDaemon, _ arguments: [String]) async throws -> [[String: Any]] {
        let result = try await daemon.cli(arguments + ["--json"])
        #expect(result.code == 0, "\(result.stderr)")
        return try #require(OperatorCLITests.json(result.stdout) as? [[String: Any]], "\(result.stdout)")
    }

    static func ingest(_ lines: String, into daemon: InProcessDaemon) async throws {
        let result = try await daemon.cli(["ingest", "-"], input: Data(lines.utf8))
        #expect(result.code == 0, "\(result.stdout)\(result.stderr)")
    }

    /// The value of `tether_agent_last_used_seconds` for `agent` in `/metrics`, nil without one.
    static func lastUsedSeconds(_ daemon: InProcessDaemon, agent: String) async throws -> Double? {
        let (_, text) = try await daemon.get("/metrics")
        let prefix = #"tether_agent_last_used_seconds{agent="\#(agent)"} "#
        return text.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Double($0.dropFirst(prefix.count)) }
    }

    @Test func anAllowedCheckIsRecordedADeniedOneIsNotAndLastUsesSurviveARestart() async throws {
        let folder = try Self.folder()
        let before = Int64(Date().timeIntervalSince1970)
        var firstStore: SQLiteStateStore?
        try await InProcessDaemon.run(config: Self.config, folder: folder) { daemon in
            firstStore = daemon.store
            try await Self.ingest(HREventLines.joiners(OperatorCLITests.staff), into: daemon)
            #expect(try await daemon.check("alice") == "allow")
            #expect(try await daemon.check("alice") == "allow")
            #expect(try await daemon.check("mallory") == "deny")
            // bob has no grant of this scope: denied, not recorded.
            let token = "check-token-usage"
            let refused = try await daemon.post(
                "/v1/check", body: #"{"agent":"support-copilot","subject":"bob","scope":"tickets:write","resource":"zendesk:queue/Support"}"#,
                headers: ["Content-Type": "application/json", "Authorization": "Bearer \(token)"])
            #expect(refused.body.contains(#""allowed":false"#))

            let pending = daemon.services.engine.index.usage.pending()
            #expect(Set(pending.grants.keys) == [Self.alice])
            #expect(Set(pending.agents.keys) == ["support-copilot"])
            // Held in memory until the flush, yet operators see it at once.
            #expect(try await daemon.store.grantUsage().isEmpty)
            let rows = try await Self.rows(daemon, ["grants"])
            #expect(rows.filter { $0["lastUsed"] != nil }.compactMap { $0["subject"] as? String } == ["alice"])
            let agents = try await Self.rows(daemon, ["agents"])
            #expect(agents.first?["lastUsed"] is String)
            // Nothing flushed yet: the gauge has no sample.
            #expect(try await Self.lastUsedSeconds(daemon, agent: "support-copilot") == nil)
        }
        // The graceful shutdown flushed them.
        let store = try #require(firstStore)
        let used = try #require(try await store.grantUsage()[Self.alice])
        #expect((before...Int64(Date().timeIntervalSince1970)).contains(used))
        #expect(try await store.grantUsage().count == 1)
        #expect(try await store.agentUsage() == ["support-copilot": used])

        // The same store and configuration, in a new daemon (the first one's notify socket goes).
        try FileManager.default.removeItem(at: folder.appendingPathComponent("notify.sock"))
        try await InProcessDaemon.run(config: Self.config, folder: folder) { daemon in
            let rows = try await Self.rows(daemon, ["grants"])
            let alice = try #require(rows.first { $0["subject"] as? String == "alice" })
            #expect(alice["lastUsed"] as? String == Timestamp.string(Date(timeIntervalSince1970: Double(used))))
            let seconds = try #require(try await Self.lastUsedSeconds(daemon, agent: "support-copilot"))
            #expect(seconds >= 0 && seconds < 600)

            // A revoked grant's last use goes with it; the agent's stays.
            try await Self.ingest(HREventLines.event("evt-leave-alice", "leaver", user: "alice", employeeNumber: 1002) + "\n", into: daemon)
            #expect(try await daemon.store.grantUsage()[Self.alice] == nil)
            #expect(try await daemon.store.agentUsage()["support-copilot"] == used)
        }
    }

    @Test func theFlusherWritesOnItsIntervalOnShutdownAndAfterTheStoreRefusedABatch() async throws {
        var populated: SQLiteStateStore?
        try await InProcessDaemon.run(config: Self.config, folder: try Self.folder()) { daemon in
            try await Self.ingest(HREventLines.joiners(OperatorCLITests.staff), into: daemon)
            populated = daemon.store
        }
        let store = FailingUsageStore(try #require(populated))
        let wall = ManualWallClock(Date(timeIntervalSince1970: 1_800_000_000))
        let recorder = UsageRecorder(clock: wall)
        let clock = ManualClock()
        let logger = Logger(label: "usage-test") { _ in SwiftLogNoOpLogHandler() }
        let flusher = UsageFlushService(recorder: recorder, store: store, interval: .seconds(60), clock: clock, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [.init(service: flusher)], logger: logger))
        let running = Task { try await group.run() }

        recorder.record(grant: Self.alice, agent: "support-copilot")
        #expect(await eventually { clock.sleepers == 1 })
        clock.advance(by: .seconds(59))
        #expect(try await store.grantUsage().isEmpty)
        clock.advance(by: .seconds(1))
        #expect(try await eventually { try await store.grantUsage()[Self.alice] == 1_800_000_000 })
        #expect(try await store.agentUsage() == ["support-copilot": 1_800_000_000])

        // A batch the store refuses is kept and written with the next one.
        #expect(await eventually { clock.sleepers == 1 })
        wall.advance(by: 100)
        recorder.record(grant: Self.alice, agent: "support-copilot")
        store.failing.withLock { $0 = true }
        clock.advance(by: .seconds(60))
        #expect(await eventually { store.refused.withLock { $0 } == 1 })
        #expect(try await store.grantUsage()[Self.alice] == 1_800_000_000)
        store.failing.withLock { $0 = false }

        // The graceful shutdown writes what is left, without waiting for the interval.
        let bob = Self.grant("bob")
        wall.advance(by: 5)
        recorder.record(grant: bob, agent: "support-copilot")
        await group.triggerGracefulShutdown()
        try await running.value
        #expect(try await store.grantUsage() == [Self.alice: 1_800_000_100, bob: 1_800_000_105])
        #expect(try await store.agentUsage() == ["support-copilot": 1_800_000_105])
    }

    @Test func unusedListsTheAgentsAndGrantsNobodyExercised() async throws {
        let config = """
            lifecycle: { precedence: [hr, scim, ldap] }
            sources:
              hr: { secretFiles: [hr.secret] }
            check: { tokenFile: check.token }
            agents:
              - { id: support-copilot, kind: delegated, sponsor: jdoe }
              - id: ledger-bot
                kind: autonomous
                sponsor: jdoe
                grants: [ { scopes: ["ledger:read"], resource: "erp:ledger/*" } ]
              - { id: idle-bot, kind: delegated, sponsor: jdoe }
            policies:
              - id: support-tickets
                when: { attribute: { name: department, in: [Support] } }
                grant: [ { agent: support-copilot, scopes: [tickets:read], resource: "zendesk:queue/{department}" } ]
            """
        try await InProcessDaemon.run(config: config, folder: try Self.folder()) { daemon in
            try await Self.ingest(HREventLines.joiners(OperatorCLITests.staff), into: daemon)
            let now = Int64(Date().timeIntervalSince1970)
            let day: Int64 = 86_400
            try await daemon.store.recordUsage(Usage(
                grants: [Self.alice: now - 40 * day, Self.grant("bob"): now - day], agents: ["ledger-bot": now - 40 * day]))
            #expect(try await daemon.check("carol") == "allow")

            // Used 40 days ago: unused for 30 days. Never used but granted just now: not yet.
            let month = try await Self.rows(daemon, ["grants", "--unused", "30d"])
            #expect(month.compactMap { $0["subject"] as? String } == ["alice"])
            #expect(month.first?["lastUsed"] as? String == Timestamp.string(Date(timeIntervalSince1970: Double(now - 40 * day))))
            let halfDay = try await Self.rows(daemon, ["grants", "--unused", "12h"])
            #expect(Set(halfDay.compactMap { $0["subject"] as? String }) == ["alice", "bob"])

            // ledger-bot was last used 40 days ago; idle-bot never, and has no grant.
            let agents = try await Self.rows(daemon, ["agents", "--unused", "30d"])
            #expect(Set(agents.compactMap { $0["id"] as? String }) == ["ledger-bot", "idle-bot"])
            #expect(agents.first { $0["id"] as? String == "idle-bot" }?["lastUsed"] == nil)
            let human = try await daemon.cli(["agents", "--unused", "30d"])
            #expect(human.code == 0)
            #expect(human.stdout.contains("LAST USED"))
            #expect(human.stdout.split(separator: "\n").contains { $0.hasPrefix("idle-bot") && $0.hasSuffix("never") })

            let refused = try await daemon.cli(["grants", "--unused", "soon"])
            #expect(refused.code == 1)
            #expect(refused.stderr.contains("invalid duration 'soon' for --unused"), "\(refused.stderr)")
        }
    }
}

/// The real store, made to refuse usage batches while `failing` is set, as a full disk would.
final class FailingUsageStore: UsageStore {
    let store: SQLiteStateStore
    let failing = Mutex(false)
    /// How many batches were refused.
    let refused = Mutex(0)

    init(_ store: SQLiteStateStore) { self.store = store }

    func recordUsage(_ usage: Usage) async throws {
        if failing.withLock({ $0 }) {
            refused.withLock { $0 += 1 }
            throw StoreError(.write, "the disk is full")
        }
        try await store.recordUsage(usage)
    }

    func grantUsage() async throws -> [String: Int64] { try await store.grantUsage() }
    func agentUsage() async throws -> [String: Int64] { try await store.agentUsage() }
    func earliestGrants() async throws -> [String: Date] { try await store.earliestGrants() }
}
