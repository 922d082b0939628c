import Foundation
import Logging
import TetherConfig
import TetherCore
import TetherEngine
@testable import TetherLDAP
import TetherStore
import Testing

/// syncrepl persist messages carry an entry as it was when it changed. A member lookup or a
/// complete read can bring a later state of the same entry first; the older message that
/// arrives after it must not bring back the state the directory has left.
@Suite("LDAP persist order")
struct PersistOrderTests {
    static let uuid = "5a1b2c3d-0000-4000-8000-000000000001"

    static func carol(csn: String, department: String = "Engineering", locked: Bool = false) -> LDAPEntry {
        var attributes: [String: [String]] = [
            "entryUUID": [uuid], "uid": ["carol"], "cn": ["Carol"], "mail": ["carol@example.com"],
            "employeeNumber": ["1005"], "departmentNumber": [department], "entryCSN": ["\(csn)#000000#000#000000"],
        ]
        if locked { attributes["pwdAccountLockedTime"] = ["000001010000Z"] }
        return LDAPEntry(dn: "uid=carol,ou=eng,\(Fixture.people)", attributes: attributes)
    }

    static func message(_ entry: LDAPEntry) -> SyncMessage {
        SyncMessage(event: .entry(uuid: uuid, entry), cookie: nil)
    }

    @Test("an older persist message does not undo a later state already read")
    func olderMessageAfterALaterRead() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tether-persist-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try SQLiteStateStore(path: folder.appendingPathComponent("tether.db").path)
        let engine = Engine(
            store: store, configuration: EngineConfiguration(policySet: PolicySet(agents: Fixture.agents, policies: Fixture.policies)))
        let configuration = LDAPConfiguration(
            url: "ldap://127.0.0.1:1/", users: LDAPUsersConfiguration(base: Fixture.people),
            suspendWhen: LDAPSuspendConfiguration(attribute: "pwdAccountLockedTime", test: .present(true)),
            changeDetection: .syncrepl)
        let service = LDAPSourceService(configuration: configuration, engine: engine, store: store, logger: Logger(label: "test"))
        let session = DirectorySession(service: service)
        session.mode = "syncrepl"

        // Carol joins (t1).
        try await session.applyPersisted(Self.message(Self.carol(csn: "20261128100001.000000Z")), kind: .users)
        #expect(try await store.identity(userName: "carol")?.status == .active)

        // A lookup reads her as she is now: moved (t2), then locked (t3).
        let now = try #require(session.mapper.user(Self.carol(csn: "20261128100003.000000Z", department: "Support", locked: true)))
        let affected = session.mirror.model.upsertUser(now)
        try await session.apply(session.mirror.changedFacts(forUsers: affected, trigger: now.version, now: Date()), cookie: nil)
        #expect(try await store.identity(userName: "carol")?.status == .suspended)

        // The message of her move (t2) arrives only now: she stays locked.
        try await session.applyPersisted(Self.message(Self.carol(csn: "20261128100002.000000Z", department: "Support")), kind: .users)
        #expect(try await store.identity(userName: "carol")?.status == .suspended)
        let reactivated = try await store.auditRecords(AuditQuery()).filter { $0.action == "identity.reactivated" }
        #expect(reactivated.isEmpty, "\(reactivated.map(\.line))")

        // Her unlock (t4) is newer than anything read: applied.
        try await session.applyPersisted(Self.message(Self.carol(csn: "20261128100004.000000Z", department: "Support")), kind: .users)
        #expect(try await store.identity(userName: "carol")?.status == .active)
        #expect(try await store.identity(userName: "carol")?.department == "Support")
    }
}
