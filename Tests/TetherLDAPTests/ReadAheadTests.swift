import Foundation
import Logging
import SlapdHarness
import TetherLDAP
import Testing

/// Paged searches read the server's messages through a 64 KiB read-ahead buffer: many
/// entries arrive in one read(2), and an entry larger than the buffer still arrives whole.
/// A syncrepl session on the same connection reads message by message again.
@Suite("LDAP reads through a read-ahead buffer")
struct ReadAheadTests {
    static let people = "ou=bulk,\(Fixture.people)"
    static let count = 300

    /// Person `number`'s description: a few bytes for most people, and for every 37th one a
    /// value of up to 200 KiB with multi-byte characters, larger than the buffer.
    static func description(_ number: Int) -> String {
        let unit = "Zoë-\(number)-ø∑-"
        let repeats = number % 37 == 0 ? 200_000 / unit.utf8.count * (number % 3 + 1) / 3 : number % 5 + 1
        return String(repeating: unit, count: repeats)
    }

    static var ldif: String {
        var text = Fixture.ldif + """


            dn: \(people)
            objectClass: organizationalUnit
            ou: bulk


            """
        for number in 0..<count {
            let encoded = Data(description(number).utf8).base64EncodedString()
            text += """
                dn: uid=p\(number),\(people)
                objectClass: inetOrgPerson
                uid: p\(number)
                cn: Person \(number)
                sn: \(number)
                description:: \(encoded)


                """
        }
        return text
    }

    /// Reads every person twice on one connection and compares each value with what was loaded.
    func readEveryone(_ options: LDAPConnectionOptions) async throws {
        let connection = LDAPConnection(options: options, logger: Logger(label: "test"))
        try await connection.open()
        let url = options.url + (options.startTLS ? " with StartTLS" : "")
        for pageSize in [7, 500] {
            var search = try await connection.startSearch(
                LDAPSearchRequest(base: Self.people, filter: "(objectClass=inetOrgPerson)", attributes: ["uid", "description"]),
                pageSize: pageSize)
            #expect(await connection.readsAhead, "a paged search over \(url) reads message by message")
            var seen = 0
            while !search.isDone {
                for entry in try await connection.nextPage(&search) {
                    let uid = try #require(entry.first("uid"))
                    let number = try #require(Int(uid.dropFirst()))
                    #expect(entry.first("description") == Self.description(number), "\(uid) read with pages of \(pageSize)")
                    #expect(entry.undecodable.isEmpty)
                    seen += 1
                }
            }
            #expect(seen == Self.count, "pages of \(pageSize) over \(url)")
        }
        // libldap's sync API takes each batch of received messages for one message: with the
        // buffer it would see batches of many, and fail.
        let session = SyncReplSession(
            connection: connection,
            request: LDAPSearchRequest(base: Self.people, filter: "(objectClass=inetOrgPerson)", attributes: ["uid", "description"]),
            stallTimeout: .seconds(30))
        let messages = try await session.refresh(from: nil)
        #expect(!(await connection.readsAhead), "a syncrepl session over \(url) reads ahead")
        var refreshed = 0
        for message in messages {
            guard case .entry(_, let entry) = message.event else { continue }
            let number = try #require(entry.first("uid").flatMap { Int($0.dropFirst()) })
            #expect(entry.first("description") == Self.description(number))
            refreshed += 1
        }
        #expect(refreshed == Self.count, "the refresh over \(url) after paged reads")
        await connection.close()
    }

    @Test("plain LDAP: entries smaller and larger than the buffer are read whole, page after page")
    func plain() async throws {
        let slapd = try await Slapd.start(ldif: Self.ldif)
        defer { slapd.destroy() }
        try await readEveryone(LDAPConnectionOptions(url: slapd.url))
    }

    @Test("ldaps:// and StartTLS: the buffer sits under TLS and reads the same entries")
    func overTLS() async throws {
        let pki = try TestPKI.make()
        defer { pki.destroy() }
        let slapd = try await Slapd.start(
            ldif: Self.ldif,
            options: Slapd.Options(tls: Slapd.TLSFiles(ca: pki.ca, certificate: pki.certificate, key: pki.key)))
        defer { slapd.destroy() }
        try await readEveryone(LDAPConnectionOptions(url: slapd.ldapsURL, caFile: pki.ca))
        try await readEveryone(LDAPConnectionOptions(url: slapd.url, startTLS: true, caFile: pki.ca))
    }
}
