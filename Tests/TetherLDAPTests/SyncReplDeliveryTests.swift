import Foundation
import Logging
import SlapdHarness
import Synchronization
import TetherLDAP
import Testing

/// A syncrepl refresh hands its messages on in batches while it runs: a first refresh of a
/// large directory is never held whole.
@Suite("syncrepl refresh delivery")
struct SyncReplDeliveryTests {
    @Test("a refresh delivers its entries in batches as they arrive and returns only the rest")
    func refreshDeliversInBatches() async throws {
        let extra = (0..<60).map { Fixture.person("p\($0)", ou: "sales", department: "Sales", number: 9_000 + $0) }
        let slapd = try await Slapd.start(ldif: Fixture.ldif + "\n\n" + extra.joined(separator: "\n\n"))
        defer { slapd.destroy() }
        let connection = LDAPConnection(options: LDAPConnectionOptions(url: slapd.url), logger: Logger(label: "test"))
        try await connection.open()
        let session = SyncReplSession(
            connection: connection,
            request: LDAPSearchRequest(base: Fixture.people, filter: "(objectClass=inetOrgPerson)", attributes: ["uid"]),
            stallTimeout: .seconds(30))

        let batches = Mutex<[[SyncMessage]]>([])
        let rest = try await session.refresh(from: nil, delivering: SyncDelivery(every: 10) { batch in
            batches.withLock { $0.append(batch) }
        })
        let delivered = batches.withLock { $0 }
        #expect(delivered.count >= 6, "66 entries in batches of 10 came in \(delivered.count) batches")
        #expect(delivered.allSatisfy { $0.count == 10 })
        #expect(rest.count < 10, "the refresh returned \(rest.count) messages it could have delivered")
        let uids = (delivered.joined() + rest).compactMap { message -> String? in
            if case .entry(_, let entry) = message.event { entry.first("uid") } else { nil }
        }
        #expect(uids.count == 66 && Set(uids).count == 66, "every person once: \(uids.count)")
        #expect((delivered.joined() + rest).contains { $0.cookie != nil }, "the refresh ends at a cookie")
        await connection.close()
    }
}
