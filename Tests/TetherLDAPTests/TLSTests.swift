import Foundation
import Logging
import SlapdHarness
import TetherConfig
import TetherLDAP
import Testing

/// A CA and a server certificate for 127.0.0.1, made with `openssl` for one test, and a
/// second CA that did not sign it.
struct TestPKI {
    let folder: URL
    var ca: String { folder.appendingPathComponent("ca.crt").path }
    var otherCA: String { folder.appendingPathComponent("other-ca.crt").path }
    var certificate: String { folder.appendingPathComponent("server.crt").path }
    var key: String { folder.appendingPathComponent("server.key").path }

    static func make() throws -> TestPKI {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tether-pki-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let pki = TestPKI(folder: folder)
        func path(_ name: String) -> String { folder.appendingPathComponent(name).path }
        let openssl = "/usr/bin/openssl"
        for (name, subject) in [("ca", "/CN=Tether Test CA"), ("other-ca", "/CN=Somebody Else's CA")] {
            try Slapd.run(openssl, [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", subject,
                "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                "-keyout", path("\(name).key"), "-out", path("\(name).crt"),
            ])
        }
        try Slapd.run(openssl, [
            "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", pki.key, "-out", path("server.csr"),
        ])
        try """
            subjectAltName=IP:127.0.0.1,DNS:localhost
            basicConstraints=CA:FALSE
            keyUsage=digitalSignature,keyEncipherment
            extendedKeyUsage=serverAuth
            """.write(toFile: path("server.ext"), atomically: true, encoding: .utf8)
        try Slapd.run(openssl, [
            "x509", "-req", "-in", path("server.csr"), "-CA", pki.ca, "-CAkey", path("ca.key"), "-CAcreateserial",
            "-days", "2", "-extfile", path("server.ext"), "-out", pki.certificate,
        ])
        return pki
    }

    func destroy() { try? FileManager.default.removeItem(at: folder) }
}

@Suite("LDAP over TLS")
struct TLSTests {
    let logger = Logger(label: "tether.ldap.test")

    @Test("ldaps:// with the CA that signed the server: the source reads and follows the directory")
    func ldapsWithCA() async throws {
        let pki = try TestPKI.make()
        defer { pki.destroy() }
        let slapd = try await Slapd.start(
            ldif: Fixture.ldif,
            options: Slapd.Options(tls: Slapd.TLSFiles(ca: pki.ca, certificate: pki.certificate, key: pki.key)))
        defer { slapd.destroy() }
        let world = try World(slapd: slapd, changeDetection: .auto)
        world.configuration.url = slapd.ldapsURL
        world.configuration.caFile = pki.ca
        world.start()
        var grants = Fixture.initialGrants
        try await world.waitForGrants(grants, "initial grants over ldaps")
        try slapd.modify("""
            dn: cn=support,\(Fixture.groups)
            changetype: modify
            add: member
            member: uid=bob,ou=sales,\(Fixture.people)
            """)
        grants.insert("bob support-copilot tickets:read zendesk:queue/Success")
        try await world.waitForGrants(grants, "a change followed over ldaps")
        await world.stop()
    }

    @Test("a certificate the CA file does not vouch for is refused, and the source is degraded")
    func refusedCertificate() async throws {
        let pki = try TestPKI.make()
        defer { pki.destroy() }
        let slapd = try await Slapd.start(
            ldif: Fixture.ldif,
            options: Slapd.Options(
                syncprov: false, tls: Slapd.TLSFiles(ca: pki.ca, certificate: pki.certificate, key: pki.key)))
        defer { slapd.destroy() }

        // Another CA, and the system's CAs (which know nothing of ours): both refused.
        for caFile in [pki.otherCA, nil] {
            let connection = LDAPConnection(
                options: LDAPConnectionOptions(
                    url: slapd.ldapsURL, caFile: caFile, timeout: .seconds(5)),
                logger: logger)
            let error = await #expect(throws: LDAPError.self) { try await connection.open() }
            #expect(error?.code == .tls, "caFile \(caFile ?? "system"): \(String(describing: error))")
        }

        // StartTLS is verified the same way.
        let startTLS = LDAPConnection(
            options: LDAPConnectionOptions(url: slapd.url, startTLS: true, caFile: pki.otherCA, timeout: .seconds(5)),
            logger: logger)
        let refused = await #expect(throws: LDAPError.self) { try await startTLS.open() }
        #expect(refused?.code == .tls)

        // Through the service: degraded, nothing applied.
        let world = try World(slapd: slapd, changeDetection: .poll)
        world.configuration.url = slapd.ldapsURL
        world.configuration.caFile = pki.otherCA
        world.start()
        try await world.eventually("source.degraded audited") { try await !world.audit("source.degraded").isEmpty }
        #expect(try await world.grants().isEmpty)
        await world.stop()
    }

    @Test("StartTLS with the right CA, and verification turned off explicitly, connect")
    func startTLSAndExplicitlyUnverified() async throws {
        let pki = try TestPKI.make()
        defer { pki.destroy() }
        let slapd = try await Slapd.start(
            ldif: Fixture.ldif,
            options: Slapd.Options(
                syncprov: false, tls: Slapd.TLSFiles(ca: pki.ca, certificate: pki.certificate, key: pki.key)))
        defer { slapd.destroy() }

        let startTLS = LDAPConnection(
            options: LDAPConnectionOptions(
                url: slapd.url, startTLS: true, caFile: pki.ca, timeout: .seconds(5)),
            logger: logger)
        try await startTLS.open()
        #expect(try await startTLS.rootDSE()["namingContexts"] == ["dc=example,dc=com"])
        await startTLS.close()

        let unverified = LDAPConnection(
            options: LDAPConnectionOptions(url: slapd.ldapsURL, tlsVerify: false, timeout: .seconds(5)), logger: logger)
        try await unverified.open()
        #expect(try await unverified.rootDSE()["namingContexts"] == ["dc=example,dc=com"])
        await unverified.close()
    }
}
