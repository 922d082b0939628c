import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The demo's gateway target (`scripts/demo-target`) against the real daemon: it speaks the
/// target contract well enough that a start is quiet — grants arrive, nothing waits in the
/// outbox, the drift check reads it — and a leaver's revocation shows up in what it prints.
@Suite(.serialized) struct DemoTargetTests {
    static let script = SystemdUnitTests.unitsFolder.deletingLastPathComponent().appendingPathComponent("scripts/demo-target")

    @Test func theDemoTargetShowsARevocationArriveAndTheStartIsQuiet() async throws {
        let folder = try DaemonProcess.folder(files: ["gateway.secret": "gateway-secret", "hr.secret": "hr-secret"])
        let port = try DaemonProcess.freePort()
        let logPath = folder.appendingPathComponent("target.log").path
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let target = Process()
        target.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        target.arguments = [Self.script.path, "--port", "\(port)"]
        target.standardOutput = FileHandle(forWritingAtPath: logPath)
        target.standardError = FileHandle(forWritingAtPath: logPath)
        try target.run()
        // SIGKILL: this process's threads block SIGTERM, and the child inherits the mask.
        // Not waited for (a wait would hold a cooperative thread): Foundation reaps it.
        defer { kill(target.processIdentifier, SIGKILL) }
        let log = { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
        #expect(await eventually { log().contains("listening") }, "the demo target did not start: \(log())")

        let daemon = try DaemonProcess(
            config: """
                sources:
                  hr: { secretFiles: [hr.secret] }
                \(DaemonProcess.supportCopilot)
                targets:
                  - { id: gateway, type: http, url: "http://127.0.0.1:\(port)/grants", secretFile: gateway.secret, orphans: revoke }
                """,
            folder: folder)
        defer { daemon.stop() }
        try await daemon.waitUntilReady()
        #expect(await eventually { log().contains("GET    /grants") }, "the drift check read the target: \(log())")

        for (user, number) in [("jdoe", 1001), ("alice", 1002)] {
            #expect(try await daemon.postHR(HREventLines.event("join-\(user)", "joiner", user: user, employeeNumber: number)).status == 200)
        }
        #expect(await eventually { log().contains("granted  alice support-copilot tickets:read zendesk:queue/Support") }, "\(log())")
        #expect(try await daemon.postHR(HREventLines.event("leave-alice", "leaver", user: "alice", employeeNumber: 1002)).status == 200)
        #expect(await eventually { log().contains("REVOKED  alice support-copilot tickets:read zendesk:queue/Support") }, "\(log())")

        let status = try await daemon.cli(["status", "--json"])
        let targets = (try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])?["targets"] as? [String: Any]
        let gateway = targets?["gateway"] as? [String: Any]
        #expect(gateway?["pending"] as? Int == 0, "\(status.stdout)")
        #expect(gateway?["lastError"] == nil)
        let daemonLog = daemon.log()
        #expect(!daemonLog.contains("target unavailable") && !daemonLog.contains("drift check failed"), "\(daemonLog)")
        #expect(HealthyStartTests.errorLines(daemonLog).isEmpty, "\(daemonLog)")
    }
}
