import Foundation
import Logging
import SlapdHarness
import TetherCore
import TetherEngine
import TetherLDAP
import Testing

/// Values from clients (a SCIM userName, an HR employeeNumber or email) never change the
/// structure of an LDAP filter and never match identities by pattern.
@Suite("LDAP filter injection through client values")
struct InjectionTests {
    static let hostile = ["*", "*)(uid=*", "jdoe)(|(uid=*", "*)(objectClass=*))(|(uid=*", "\\2a", "j*", "\0"]

    @Test("an escaped hostile value matches nothing on a real slapd, where unescaped it matches everyone")
    func escapedValuesMatchLiterally() async throws {
        let slapd = try await Slapd.start(ldif: Fixture.ldif, options: Slapd.Options(syncprov: false))
        defer { slapd.destroy() }
        let connection = LDAPConnection(options: LDAPConnectionOptions(url: slapd.url), logger: Logger(label: "test"))
        try await connection.open()
        func uids(_ filter: String) async throws -> [String] {
            var search = try await connection.startSearch(
                LDAPSearchRequest(base: Fixture.people, filter: filter, attributes: ["uid"]), pageSize: 100)
            var found: [String] = []
            while !search.isDone { found += try await connection.nextPage(&search).compactMap { $0.first("uid") } }
            return found
        }
        #expect(try await uids("(uid=*)").count == 6, "the directory has six people")
        for value in Self.hostile {
            #expect(try await uids(LDAPFilter.equality("uid", value)).isEmpty, "\(value.debugDescription) matched someone")
        }
        #expect(try await uids(LDAPFilter.equality("uid", "jdoe")) == ["jdoe"], "an ordinary value still matches")
        let combined = LDAPFilter.and(["(objectClass=inetOrgPerson)", LDAPFilter.greaterOrEqual("employeeNumber", "*)(uid=*")])
        #expect(try await uids(combined).isEmpty)
    }

    @Test("an HR leaver or SCIM user carrying filter syntax terminates nobody from the directory")
    func hostileIdentitiesCorrelateWithNobody() async throws {
        let slapd = try await Slapd.start(ldif: Fixture.ldif, options: Slapd.Options(syncprov: false))
        defer { slapd.destroy() }
        let world = try World(slapd: slapd, changeDetection: .poll)
        world.start()
        try await world.waitForGrants(Fixture.initialGrants, "initial grants")

        var second = 0
        for value in Self.hostile {
            second += 1
            let at = Date().addingTimeInterval(Double(second))
            for source in [Source.hr, .scim] {
                let event = LifecycleEvent(
                    id: "\(source)-hostile-\(second)", source: source, kind: .leaver, occurredAt: at,
                    facts: IdentityFacts(
                        externalId: value, userName: value, email: value, employeeNumber: value,
                        status: .terminated, version: Timestamp.version(at)),
                    isExplicitLeaver: true)
                _ = try await world.engine.submit(event)
            }
        }
        #expect(try await world.grants() == Fixture.initialGrants, "a hostile value revoked someone's grants")
        for person in ["jdoe", "mkhan", "alice", "bob", "carol", "dave"] {
            #expect(try await world.identity(person)?.status == .active, "\(person) was matched by a hostile value")
        }
        await world.stop()
    }
}
