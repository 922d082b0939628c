import Foundation
import Testing
import TetherHTTP
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Secrets come from files and never show up in what the daemon writes: its log, the audit
/// log, status or metrics — not even when a client presents a wrong one, a source refuses
/// the password, a target fails, or the configuration is reloaded.
@Suite(.serialized) struct SecretsInLogsTests {
    static let secrets = [
        "hr.secret": "hr-secret-7Hq2", "scim.token": "scim-token-K9x4", "check.token": "check-token-Pz81",
        "ldap.password": "ldap-password-Wm55", "gateway.secret": "gateway-secret-Ry03",
    ]
    /// What a client presents instead of the secret: logs must not keep it either.
    static let wrong = ["wrong-hr-secret-Ab12", "wrong-scim-token-Cd34", "wrong-check-token-Ef56"]

    static func config(ldapPort: Int, targetPort: Int) -> String {
        """
        sources:
          hr: { secretFiles: [hr.secret] }
          scim: { tokenFile: scim.token }
          ldap:
            url: ldap://127.0.0.1:\(ldapPort)
            bindDN: cn=tether,dc=example,dc=com
            bindPasswordFile: ldap.password
            users: { base: "ou=people,dc=example,dc=com", filter: "(objectClass=inetOrgPerson)" }
            changeDetection: poll
            pollInterval: 1s
            timeout: 2s
        check: { tokenFile: check.token }
        \(DaemonProcess.supportCopilot)
        targets:
          - { id: gateway, type: http, url: "http://127.0.0.1:\(targetPort)/grants", secretFile: gateway.secret, timeout: 1s }
        """
    }

    @Test func noSecretOrPresentedCredentialIsEverWrittenOut() async throws {
        let folder = try DaemonProcess.folder(files: Self.secrets)
        // Nothing listens on either port: the directory and the target both fail.
        let config = Self.config(ldapPort: try DaemonProcess.freePort(), targetPort: try DaemonProcess.freePort())
        let daemon = try DaemonProcess(config: config, folder: folder)
        defer { daemon.stop() }
        try await daemon.waitUntilReady()

        // Right and wrong credentials on every authenticated endpoint.
        #expect(try await daemon.postHR(HREventLines.event("evt-jdoe", "joiner", user: "jdoe", employeeNumber: 1001)).status == 200)
        let event = HREventLines.event("evt-eve", "leaver", user: "jdoe", employeeNumber: 1001)
        let forged = WebhookSignature.header(body: Data(event.utf8), secrets: [Array(Self.wrong[0].utf8)], time: Date())
        let refused = try await daemon.post(
            "/hooks/hr", body: event, headers: ["Content-Type": "application/json", "Tether-Signature": forged])
        #expect(refused.status == 401)
        for token in [Self.secrets["scim.token"]!, Self.wrong[1]] {
            _ = try await daemon.post("/scim/v2/Users/.search", body: "{}", headers: ["Authorization": "Bearer \(token)"])
        }
        #expect(try await daemon.check("jdoe") == "allow")
        let denied = try await daemon.post("/v1/check", body: "{}", headers: ["Authorization": "Bearer \(Self.wrong[2])"])
        #expect(denied.status == 401)
        #expect(try await daemon.cli(["reload"]).code == 0)

        // Wait until the failing directory and target have been tried and logged.
        #expect(try await eventually(timeout: 30) {
            let status = try await daemon.cli(["status", "--json"]).stdout
            return status.contains("\"degraded\"") && status.contains("\"pending\":1")
        })
        #expect(try await eventually(timeout: 30) { daemon.log().contains("gateway") && daemon.log().contains("ldap") })

        let written = [
            ("the daemon's log", daemon.log()),
            ("the audit log", try await daemon.cli(["audit", "--json"]).stdout),
            ("tether status", try await daemon.cli(["status", "--json"]).stdout),
            ("/metrics", try await daemon.get("/metrics").1),
        ]
        for (what, text) in written {
            #expect(!text.isEmpty, "\(what) is empty")
            for secret in Array(Self.secrets.values) + Self.wrong {
                #expect(!text.contains(secret), "\(what) contains \(secret)")
            }
            #expect(!text.contains(forged), "\(what) contains the presented signature")
        }
    }
}
