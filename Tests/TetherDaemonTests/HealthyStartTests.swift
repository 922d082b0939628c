import Foundation
import Testing

/// A healthy start says nothing at level error or above: an error line in a normal start
/// teaches operators to ignore error lines (SPEC §11).
@Suite(.serialized) struct HealthyStartTests {
    /// The lines of `log` at level error or critical (`<level> <label>: <message> …`).
    static func errorLines(_ log: String) -> [Substring] {
        log.split(separator: "\n").filter { $0.hasPrefix("error ") || $0.hasPrefix("critical ") }
    }

    @Test func aHealthyStartUnderTheWatchdogLogsNoError() async throws {
        let target = RecordingTarget(secret: "gateway-secret")
        try await target.start()
        let folder = try DaemonProcess.folder(files: ["gateway.secret": "gateway-secret"])
        let config = SystemdLifecycleTests.config + """

            targets:
              - { id: gw, type: http, url: "\(target.url)", secretFile: gateway.secret }
            """
        // WATCHDOG_USEC of 2 s: pings every second, a loop counts as stuck after 2 s without a beat.
        let daemon = try DaemonProcess(config: config, watchdogMicroseconds: 2_000_000, folder: folder)
        defer { daemon.stop() }
        try await daemon.waitUntilReady()
        // The watchdog pings from the start: the startup reconciliation is not a stuck loop.
        let pinged = daemon.notify.messages().contains("WATCHDOG=1") ? true : await daemon.notify.wait(timeout: 5) { $0 == "WATCHDOG=1" } != nil
        #expect(pinged)
        // The first reconciliation is done, and the watchdog has looked at the loop since.
        #expect(try await eventually { try await daemon.get("/readyz").0 == 200 })
        daemon.notify.reset()
        #expect(await daemon.notify.wait(timeout: 5) { $0 == "WATCHDOG=1" } != nil)
        #expect(try await daemon.cli(["status", "--json"]).code == 0)

        let log = daemon.log()
        #expect(Self.errorLines(log).isEmpty, "a healthy start logged errors:\n\(log)")
        #expect(!log.contains("not beating"))
        await target.stop()
    }
}
