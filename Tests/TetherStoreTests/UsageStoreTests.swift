import Foundation
import Testing
import TetherCore
import TetherStore

/// Last uses in the store (SPEC §15 "Usage"), on every backend.
@Suite struct UsageStoreTests {
    @Test(arguments: Backend.allCases)
    func lastUsesKeepTheLaterTimeAndGoWithTheirGrant(_ backend: Backend) async throws {
        let store = try #require(try await backend.make() as? any StateStore & UsageStore)
        _ = try await store.commit(Sample.granting([Sample.grant("alice"), Sample.grant("bob")]))
        let alice = Sample.grant("alice").grant.id
        let bob = Sample.grant("bob").grant.id
        #expect(try await store.grantUsage().isEmpty)
        #expect(try await store.agentUsage().isEmpty)

        // A grant that no longer exists (revoked since the check) is dropped, not stored.
        try await store.recordUsage(Usage(grants: [alice: 100, bob: 50, "g_gone": 70], agents: ["support-copilot": 100]))
        try await store.recordUsage(Usage(grants: [alice: 90, bob: 60], agents: ["support-copilot": 90, "ledger-bot": 5]))
        #expect(try await store.grantUsage() == [alice: 100, bob: 60])
        #expect(try await store.agentUsage() == ["support-copilot": 100, "ledger-bot": 5])
        #expect(try await store.earliestGrants() == ["support-copilot": Sample.time])

        var revoking = Changeset(time: Sample.time)
        revoking.steps = [.revoke(Sample.grant("alice"), reason: "identity terminated")]
        _ = try await store.commit(revoking)
        #expect(try await store.grantUsage() == [bob: 60])
        #expect(try await store.agentUsage()["support-copilot"] == 100)

        // Granted again, it starts unused.
        _ = try await store.commit(Sample.granting([Sample.grant("alice")]))
        #expect(try await store.grantUsage()[alice] == nil)
    }
}
