import Foundation
import GRDB
import Testing
import TetherCore
import TetherEngine
import TetherStore

/// A reload takes effect only once the store has recorded it.
@Suite struct ReloadTests {
    /// Makes every commit that writes a `config.reloaded` record fail, as a full or broken
    /// disk would for that write: a trigger in the store's own file aborts the transaction.
    static func refuseConfigRecords(in world: World) throws {
        let queue = try DatabaseQueue(path: world.folder.appendingPathComponent("tether.db").path)
        try queue.write { db in
            try db.execute(sql: """
                CREATE TRIGGER refuse_config_records BEFORE INSERT ON audit WHEN NEW.action = 'config.reloaded'
                BEGIN SELECT RAISE(ABORT, 'injected: the store refuses this write'); END
                """)
        }
    }

    @Test func aReloadThatCannotBeRecordedLeavesTheRunningPoliciesAndLimitsInForce() async throws {
        let safety = SafetyLimits(maxRevocationsPerRun: 10_000, maxRevocationRatio: 1, minGrantsForRatio: 1_000_000)
        let world = try World(safety: safety)
        try await SafetyTests.seedStaff(world, count: 2)
        let grants = try await world.grantLines()
        let policies = await world.engine.configuration.policySet.hash
        try Self.refuseConfigRecords(in: world)

        // Fewer policies and tighter limits: had they taken effect, the next plan would revoke
        // the copilot's grants, or hold it at once.
        let tight = SafetyLimits(maxRevocationsPerRun: 0, maxRevocationRatio: 0, minGrantsForRatio: 0)
        await #expect(throws: StoreError.self) {
            _ = try await world.engine.reload(
                EngineConfiguration(policySet: SafetyTests.withoutSupport, safety: tight), actor: .operator("root"))
        }
        #expect(await world.engine.configuration.policySet.hash == policies)
        #expect(await world.engine.configuration.safety == safety)
        let plan = try await world.engine.reconcile(origin: .other, actor: .policy, dryRun: true).plan
        #expect(plan.isEmpty, "the old policies still explain every grant: \(plan.transcript)")
        #expect(try await world.grantLines() == grants)
        #expect(try await !world.auditActions().contains("config.reloaded"))

        // The same with `adopt`, the daemon's path: it throws, and nothing is swapped.
        await #expect(throws: StoreError.self) {
            try await world.engine.adopt(
                EngineConfiguration(policySet: SafetyTests.withoutSupport, safety: tight), actor: .operator("root"))
        }
        #expect(await world.engine.configuration.policySet.hash == policies)
        #expect(await world.engine.configuration.safety == safety)
        // A new grant is still derived by the policy in force.
        let joiner = try await world.engine.submit(Events.ldapEvent(Events.ldap(
            "newbie", version: 3, groups: ["support"], department: "Support", employeeNumber: "6000")))
        #expect(joiner.granted == 2)
    }

    @Test func aRecordedReloadTakesEffect() async throws {
        let world = try World()
        try await SafetyTests.seedStaff(world, count: 1)
        let outcome = try await world.engine.reload(
            EngineConfiguration(policySet: SafetyTests.withoutSupport), actor: .operator("root"))
        #expect(outcome.plan.revocations == 2)
        #expect(await world.engine.configuration.policySet.hash == SafetyTests.withoutSupport.hash)
        #expect(try await world.auditActions().contains("config.reloaded"))
    }
}
