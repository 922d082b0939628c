import Foundation
import Testing

/// Every secret the public listener checks rotates with a reload, without a restart: add the
/// new one, reload, switch the client, remove the old one, reload.
@Suite(.serialized) struct SecretRotationTests {
    static let config = """
        sources:
          hr: { secretFiles: [hr.secret] }
          scim: { tokenFile: scim.token }
        check: { tokenFile: check.token }
        agents:
          - { id: support-copilot, kind: delegated, sponsor: jdoe }
        policies: []
        """

    @Test func hrSecretsScimTokensAndCheckTokensRotateOnReload() async throws {
        let folder = try DaemonProcess.folder(files: ["hr.secret": "hr-old", "scim.token": "scim-old\n", "check.token": "check-old\n"])
        func write(_ file: String, _ text: String) throws {
            try text.write(to: folder.appendingPathComponent(file), atomically: true, encoding: .utf8)
        }
        try await InProcessDaemon.run(config: Self.config, folder: folder) { daemon in
            func statuses() async throws -> (hr: Int, scim: (old: Int, new: Int), check: (old: Int, new: Int)) {
                let event = HREventLines.event("evt-\(UUID().uuidString)", "joiner", user: "jdoe", employeeNumber: 1001)
                let hr = try await daemon.postHR(event).status
                func scim(_ token: String) async throws -> Int {
                    try await daemon.post("/scim/v2/Users/.search", body: "{}", headers: ["Authorization": "Bearer \(token)"]).status
                }
                func check(_ token: String) async throws -> Int {
                    let body = #"{"agent":"support-copilot","subject":"jdoe","scope":"s","resource":"r"}"#
                    return try await daemon.post("/v1/check", body: body, headers: ["Authorization": "Bearer \(token)"]).status
                }
                return (hr, (try await scim("scim-old"), try await scim("scim-new")), (try await check("check-old"), try await check("check-new")))
            }

            var now = try await statuses()
            #expect(now.hr == 200 && now.scim.old != 401 && now.scim.new == 401 && now.check.old == 200 && now.check.new == 401)

            // Step 1: the new credentials beside the old ones; both work after the reload.
            try write("scim.token", "scim-old\nscim-new\n")
            try write("check.token", "check-old\ncheck-new\n")
            #expect(try await daemon.cli(["reload"]).code == 0)
            now = try await statuses()
            #expect(now.scim.old != 401 && now.scim.new != 401 && now.check.old == 200 && now.check.new == 200)

            // Step 2: the old ones removed; only the new ones work, and the HR secret is replaced.
            try write("scim.token", "scim-new\n")
            try write("check.token", "check-new\n")
            try write("hr.secret", "hr-new")
            let reloaded = try await daemon.cli(["reload"])
            #expect(reloaded.code == 0)
            #expect(!reloaded.stdout.contains("restart"), "credentials apply in place: \(reloaded.stdout)")
            now = try await statuses()
            #expect(now.hr == 200, "signed with the secret now in the file")
            #expect(now.scim.old == 401 && now.scim.new != 401 && now.check.old == 401 && now.check.new == 200)
            let forged = try await daemon.post(
                "/hooks/hr", body: "{}",
                headers: ["Tether-Signature": "t=\(Int(Date().timeIntervalSince1970)),v1=\(String(repeating: "0", count: 64))"])
            #expect(forged.status == 401)

            // A changed listener setting does need a restart, and the reload says so.
            try daemon.rewrite(config: Self.config, http: "requestTimeout: 5s")
            let listener = try await daemon.cli(["reload"])
            #expect(listener.code == 0)
            #expect(listener.stdout.contains("takes effect after a restart: http"), "\(listener.stdout)")

            // An emptied token file is refused: the running credentials stay.
            try write("scim.token", "\n")
            #expect(try await daemon.cli(["reload"]).code != 0)
            now = try await statuses()
            #expect(now.scim.new != 401)
        }
    }
}
