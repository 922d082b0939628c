import Foundation
import Testing
import TetherCore
import TetherStore
#if canImport(Glibc)
import Glibc
#endif

/// `kill -9` at any moment loses nothing (SPEC §12).
@Suite(.serialized) struct CrashRecoveryTests {
    @Test func killDuringAStreamOfEventsThenRestart() async throws {
        let daemon = try OperatorCLITests.start()
        defer { daemon.stop() }
        // A leaver scheduled for tomorrow must survive the crash.
        let tomorrow = Date().addingTimeInterval(86_400)
        let scheduled = HREventLines.event("evt-later", "leaver", user: "jdoe", employeeNumber: 1001, effectiveAt: tomorrow) + "\n"
        #expect(try daemon.cli(["ingest", "-"], input: Data((HREventLines.joiners(OperatorCLITests.staff) + scheduled).utf8)).code == 0)

        // A stream of movers and leavers in the background; the daemon dies in the middle of it.
        var stream = ""
        for index in 0..<400 {
            let user = "user\(index)"
            stream += HREventLines.event("evt-s-\(index)", "joiner", user: user, employeeNumber: 2000 + index) + "\n"
            if index % 3 == 0 { stream += HREventLines.event("evt-l-\(index)", "leaver", user: user, employeeNumber: 2000 + index) + "\n" }
        }
        let feeder = Task.detached { try? daemon.cli(["ingest", "-"], input: Data(stream.utf8)) }
        let store = try SQLiteStateStore(path: daemon.folder.appendingPathComponent("state/tether.db").path)
        // Wait until the stream is really flowing, then kill -9.
        let flowing = try await eventually { try await store.grantCount() > 30 }
        #expect(flowing)
        daemon.signal(SIGKILL)
        _ = daemon.waitForExit()
        _ = await feeder.value

        try daemon.launch()
        try daemon.waitUntilReady()
        let planned = try daemon.cli(["plan", "--json"])
        let plan = OperatorCLITests.json(planned.stdout) as? [String: Any]
        #expect(
            (plan?["steps"] as? [Any])?.isEmpty == true,
            "grants equal the desired state after restart: \(String(describing: plan)) \(planned.stdout.prefix(2000)) \(planned.stderr)")
        #expect(try daemon.cli(["audit", "verify"]).code == 0)
        #expect(try await store.scheduledLeavers(dueBy: nil).map(\.id) == ["evt-later"])
        // Every grant the store holds belongs to an active identity.
        for grant in try await store.grants(subject: nil, agent: nil) {
            #expect(try await store.identity(userName: grant.grant.subject)?.status == .active)
        }
    }
}
