import Foundation
import GRDB
import Testing

/// A reload whose record the store refuses leaves the running configuration in force, all of
/// it: policies, safety limits and the HR secret.
@Suite(.serialized) struct ReloadFailureTests {
    @Test func aReloadTheStoreCannotRecordChangesNothingAndSaysSo() async throws {
        let folder = try DaemonProcess.folder(files: ["hr.secret": "secret-one"])
        try await InProcessDaemon.run(config: OperatorCLITests.withPolicy, folder: folder) { daemon in
            #expect(try await daemon.cli(["ingest", "-"], input: Data(HREventLines.joiners(OperatorCLITests.staff).utf8)).code == 0)
            let before = OperatorCLITests.json(try await daemon.cli(["status", "--json"]).stdout) as? [String: Any]
            let policySet = try #require(before?["policySet"] as? String)

            // The store refuses the config.reloaded record, as a broken disk would refuse that write.
            let queue = try DatabaseQueue(path: folder.appendingPathComponent("state/tether.db").path)
            try await queue.write { db in
                try db.execute(sql: """
                    CREATE TRIGGER refuse_config_records BEFORE INSERT ON audit WHEN NEW.action = 'config.reloaded'
                    BEGIN SELECT RAISE(ABORT, 'injected: the store refuses this write'); END
                    """)
            }
            // No policy (every grant would go), no limit worth the name, and a new HR secret.
            try daemon.rewrite(config: OperatorCLITests.withoutPolicy.replacingOccurrences(
                of: "maxRevocationsPerRun: 3", with: "maxRevocationsPerRun: 1000"))
            try "secret-two".write(to: folder.appendingPathComponent("hr.secret"), atomically: true, encoding: .utf8)
            let reload = try await daemon.cli(["reload"])
            #expect(reload.code != 0)
            #expect((reload.stdout + reload.stderr).contains("could not be recorded"), "\(reload.stdout)\(reload.stderr)")

            // Nothing of it took effect.
            let after = OperatorCLITests.json(try await daemon.cli(["status", "--json"]).stdout) as? [String: Any]
            #expect(after?["policySet"] as? String == policySet)
            #expect(after?["grants"] as? Int == 5)
            let plan = OperatorCLITests.json(try await daemon.cli(["plan", "--json"]).stdout) as? [String: Any]
            #expect((plan?["steps"] as? [Any])?.isEmpty == true, "the running policy still explains every grant")
            let newcomer = HREventLines.event("evt-join-erin", "joiner", user: "erin", employeeNumber: 1006)
            #expect(try await daemon.postHR(newcomer).status == 401, "the new secret is not in force")
            try "secret-one".write(to: folder.appendingPathComponent("hr.secret"), atomically: true, encoding: .utf8)
            #expect(try await daemon.postHR(newcomer).status == 200, "the running secret still is")
            #expect(try await daemon.cli(["grants", "--json"]).stdout.contains("\"erin\""), "granted by the running policy")
        }
    }
}
