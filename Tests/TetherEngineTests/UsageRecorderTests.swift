import Foundation
import Testing
import TetherCore
import TetherEngine
import TetherStore

/// The check index's record of last uses (SPEC §15 "Usage"), on a real store's grants.
@Suite struct UsageRecorderTests {
    static let request = CheckIndexTests.request

    /// An index loaded from a store where alice holds the copilot's grant, on `clock`.
    static func index(clock: ManualWallClock) async throws -> CheckIndex {
        let world = try World()
        try await world.engine.loadIndex()
        try await world.seedSponsors()
        _ = try await world.engine.submit(Events.ldapEvent(Events.ldap(
            "alice", version: 2, groups: ["support"], department: "Support", employeeNumber: "1001")))
        let index = CheckIndex(usageClock: clock)
        try await index.load(from: world.store, agents: Fixtures.policySet.agents)
        return index
    }

    @Test func anAllowedCheckIsRecordedAtItsSecondAndADeniedOneIsNot() async throws {
        let clock = ManualWallClock(Date(timeIntervalSince1970: 1_800_000_000.25))
        let index = try await Self.index(clock: clock)
        var denied = Self.request
        denied.scope = "tickets:delete"
        #expect(!index.decide(denied).allowed)
        #expect(!index.decide(CheckRequest(subject: "mallory", agent: "support-copilot", scope: "tickets:read", resource: "x")).allowed)
        #expect(index.usage.pending().isEmpty)

        let allowed = index.decide(Self.request)
        let grant = try #require(allowed.grant)
        #expect(index.usage.pending() == Usage(grants: [grant: 1_800_000_000], agents: ["support-copilot": 1_800_000_000]))
        clock.advance(by: 0.5)
        _ = index.decide(Self.request)
        #expect(index.usage.pending().grants[grant] == 1_800_000_000)
        clock.advance(by: 2)
        _ = index.decide(Self.request)
        #expect(index.usage.pending().grants[grant] == 1_800_000_002)

        // Taking them leaves nothing behind; later checks start a new batch.
        #expect(index.usage.take() == Usage(grants: [grant: 1_800_000_002], agents: ["support-copilot": 1_800_000_002]))
        #expect(index.usage.pending().isEmpty)
        #expect(index.usage.take().isEmpty)
        clock.advance(by: 1)
        _ = index.decide(Self.request)
        #expect(index.usage.take().grants == [grant: 1_800_000_003])
    }

    @Test func checksFromManyTasksAreEachRecorded() async throws {
        let recorder = UsageRecorder(clock: ManualWallClock(Date(timeIntervalSince1970: 1_800_000_000)))
        let grants = (0..<1_000).map { Grant(subject: "u\($0)", agent: "agent-\($0 % 7)", scope: "s", resource: "r").id }
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<16 {
                group.addTask {
                    for (offset, grant) in grants.enumerated() where offset % 16 == task || offset % 3 == 0 {
                        recorder.record(grant: grant, agent: "agent-\(offset % 7)")
                    }
                }
            }
        }
        let usage = recorder.take()
        #expect(usage.grants.count == 1_000)
        #expect(Set(usage.agents.keys) == Set((0..<7).map { "agent-\($0)" }))
    }

    /// A guide to what recording costs a check, not a timed test: it asserts nothing about time
    /// and runs only when `TETHER_MICROBENCH` is set.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["TETHER_MICROBENCH"] != nil))
    func recordingCostsLittleNextToADecision() async throws {
        let index = try await Self.index(clock: ManualWallClock())
        let recorder = UsageRecorder()
        var refusedRequest = Self.request
        refusedRequest.scope = "tickets:delete"
        let denied = refusedRequest
        let rounds = 200_000
        func perCall(_ body: @escaping @Sendable () -> Void) async -> Double {
            let started = ContinuousClock.now
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<16 { group.addTask { for _ in 0..<rounds { body() } } }
            }
            let elapsed = ContinuousClock.now - started
            return Double(elapsed.components.attoseconds) / 1e9 / Double(16 * rounds)
                + Double(elapsed.components.seconds) * 1e9 / Double(16 * rounds)
        }
        let allowed = await perCall { _ = index.decide(Self.request) }
        let refused = await perCall { _ = index.decide(denied) }
        let record = await perCall { recorder.record(grant: "g_0123456789abcdef0123456789abcdef", agent: "support-copilot") }
        print("usage microbenchmark (16 tasks): allowed check \(allowed) ns, denied check (not recorded) \(refused) ns, record alone \(record) ns")
    }
}
