import Foundation
import PostgresHarness
import Testing

/// `tether serve` on PostgreSQL (SPEC §14, `store.postgres`): the same answers as on SQLite,
/// state that outlives the process, the audit chain verified by `tether audit verify`, and
/// settings that cannot work refused before anything is served.
@Suite(.serialized) struct PostgresDaemonTests {
    static let secrets = ["hr.secret": "hr-secret-pg", "check.token": "check-token-pg", "db.password": "unused-with-trust\n"]

    static let config = """
        sources:
          hr: { secretFiles: [hr.secret] }
        check: { tokenFile: check.token }
        \(DaemonProcess.supportCopilot)
        """

    /// A `store` section for a new database of the test cluster.
    static func store(passwordFile: String? = "db.password", extra: String = "") async throws -> (section: String, database: String) {
        let cluster = try await PostgresCluster.shared()
        let database = try await cluster.makeDatabase()
        let password = passwordFile.map { ", passwordFile: \($0)" } ?? ""
        return ("{ postgres: { url: \"\(cluster.url(database: database))\"\(password)\(extra) } }", database)
    }

    @Test func aLeaverIsRevokedAndTheStateOutlivesTheProcess() async throws {
        let (store, database) = try await Self.store()
        let folder = try DaemonProcess.folder(files: Self.secrets)
        let daemon = try DaemonProcess(config: Self.config, folder: folder, store: store)
        defer { daemon.stop() }
        try await daemon.waitUntilReady()
        #expect(daemon.log().contains("postgres://tether@127.0.0.1"), "the start names the database it uses")

        // jdoe sponsors the copilot; alee uses it, then leaves.
        #expect(try await daemon.postHR(HREventLines.event("evt-join", "joiner", user: "jdoe", employeeNumber: 1001)).status == 200)
        #expect(try await daemon.postHR(HREventLines.event("evt-join-alee", "joiner", user: "alee", employeeNumber: 1003)).status == 200)
        #expect(try await daemon.check("alee") == "allow")
        // The leaver's 200 comes after the revocation is committed: the next check is denied.
        let leaver = HREventLines.event("evt-leave", "leaver", user: "alee", employeeNumber: 1003)
        #expect(try await daemon.postHR(leaver).status == 200)
        #expect(try await daemon.check("alee") == "deny")
        let cluster = try await PostgresCluster.shared()
        #expect(try await cluster.psql("SELECT subject FROM grants", database: database).trimmingCharacters(in: .whitespacesAndNewlines) == "jdoe")
        let actions = try await cluster.psql("SELECT action FROM audit ORDER BY seq", database: database).split(separator: "\n")
        #expect(actions.contains("grant.granted") && actions.contains("grant.revoked"))

        // Killed and started again, the daemon reads its state back from the database.
        #expect(await daemon.stopAndWait())
        try daemon.launch()
        try await daemon.waitUntilReady()
        let rejoined = try await daemon.postHR(HREventLines.event("evt-join-2", "joiner", user: "asmith", employeeNumber: 1002))
        #expect(rejoined.status == 200, "\(rejoined.body)\n\(daemon.log())")
        #expect(try await daemon.check("asmith") == "allow")
        #expect(try await daemon.check("alee") == "deny")
        // A replayed event is recognised: nothing is applied twice.
        let replayed = try await daemon.postHR(leaver)
        #expect(replayed.status == 200, "\(replayed.body)")
        let revoked = try await cluster.psql("SELECT count(*) FROM audit WHERE action = 'grant.revoked'", database: database)
        #expect(revoked.trimmingCharacters(in: .whitespacesAndNewlines) == "1")

        let verify = try await daemon.cli(["audit", "verify"])
        #expect(verify.code == 0, "\(verify.output)")
        #expect(verify.output.contains("intact"))
        let listed = try await daemon.cli(["audit", "list", "--json", "--subject", "alee"])
        #expect(listed.output.split(separator: "\n").count >= 2)

        // Each answer is in the database's decision log (those queued when the process was
        // killed are lost with it), read by `tether decisions` and `tether explain --decision`.
        #expect(try await eventually {
            try await cluster.psql("SELECT count(*) FROM decisions WHERE subject = 'asmith'", database: database)
                .trimmingCharacters(in: .whitespacesAndNewlines) == "1"
        })
        let decisions = try await daemon.cli(["decisions", "--subject", "asmith", "--json"])
        #expect(decisions.code == 0, "\(decisions.output)")
        let line = try #require(decisions.stdout.split(separator: "\n").first)
        let decision = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(decision["allowed"] as? Bool == true && decision["agent"] as? String == "support-copilot", "\(decision)")
        let id = try #require(decision["decision"] as? String)
        let explained = try await daemon.cli(["explain", "--decision", id])
        #expect(explained.code == 0 && explained.stdout.contains("asmith"), "\(explained.output)")
        #expect(HealthyStartTests.errorLines(daemon.log()).isEmpty, "\(daemon.log())")
    }

    @Test func anUnreadablePasswordFileIsRefusedBeforeAnythingStarts() async throws {
        let (store, _) = try await Self.store(passwordFile: "missing.password")
        let folder = try DaemonProcess.folder(files: Self.secrets)
        let configPath = folder.appendingPathComponent("tether.yaml").path
        try DaemonProcess.write(
            config: Self.config, to: configPath, port: try DaemonProcess.freePort(),
            socket: folder.appendingPathComponent("admin.sock").path, store: store)
        let served = try await DaemonProcess.run(["serve", "--config", configPath], timeout: 30)
        #expect(served.code == 2)
        #expect(served.output.contains("missing.password"), "\(served.output)")
    }

    @Test func aServerThatDoesNotAnswerIsNamedAndNoPasswordIsShown() async throws {
        let port = try DaemonProcess.freePort()
        let folder = try DaemonProcess.folder(files: Self.secrets)
        let configPath = folder.appendingPathComponent("tether.yaml").path
        try DaemonProcess.write(
            config: Self.config, to: configPath, port: try DaemonProcess.freePort(),
            socket: folder.appendingPathComponent("admin.sock").path,
            store: "{ postgres: { url: \"postgres://tether@127.0.0.1:\(port)/tether\", passwordFile: db.password } }")
        let served = try await DaemonProcess.run(["serve", "--config", configPath], timeout: 60)
        #expect(served.code == 1)
        #expect(served.output.contains("postgres://tether@127.0.0.1:\(port)/tether"), "\(served.output)")
        #expect(!served.output.contains("unused-with-trust"))
        // check-config names what is wrong with a URL, and where.
        try DaemonProcess.write(
            config: Self.config, to: configPath, port: try DaemonProcess.freePort(),
            socket: folder.appendingPathComponent("admin.sock").path,
            store: "{ postgres: { url: \"postgres://tether:hunter2@db.example.com/tether\" } }")
        let checked = try await DaemonProcess.run(["check-config", "--config", configPath])
        #expect(checked.code == 2)
        #expect(checked.output.contains("store.postgres.url"), "\(checked.output)")
        #expect(checked.output.contains("passwordFile"))
        #expect(!checked.output.contains("hunter2"))
    }
}
