import Foundation
import Testing
import TetherDaemon

/// What an operator gets around the daemon: `--version`, and the build in the start log and in
/// `/metrics`.
@Suite struct OperatorToolingTests {
    // MARK: Version

    @Test func aBuildSaysWhatItKnowsAndWhatItDoesNot() {
        let stamped = BuildInfo(version: "1.2.3", commit: "0123456789ab", date: "2026-12-05T09:00:00Z")
        #expect(stamped.description == "tether 1.2.3 (commit 0123456789ab, built 2026-12-05T09:00:00Z)")
        #expect(stamped.commitLabel == "0123456789ab")
        // What an unstamped build's C functions return: empty strings.
        let unstamped = BuildInfo(version: "1.2.3", commit: "", date: "")
        #expect(unstamped.description == "tether 1.2.3 (unknown commit, unknown build date)")
        #expect(unstamped.commitLabel == "unknown")
    }

    @Test func versionPrintsTheReleaseCommitAndBuildDate() async throws {
        let result = try await DaemonProcess.run(["--version"])
        #expect(result.code == 0)
        #expect(result.stdout == BuildInfo.current.description + "\n")
        #expect(result.stdout.hasPrefix("tether \(BuildInfo.version) ("))
        // The test build is not stamped (scripts/package stamps its own build and tests it).
        #expect(BuildInfo.current.commit == nil)
        #expect(result.stdout.contains("unknown commit, unknown build date"))
    }

    @Test func theDaemonLogsItsBuildAtStartAndMetricsExportIt() async throws {
        let daemon = try DaemonProcess(config: DaemonProcess.supportCopilot)
        defer { daemon.stop() }
        try await daemon.waitUntilReady()
        let line = daemon.log().split(separator: "\n").first { $0.contains(" starting") }
        #expect(line?.contains("tether: \(BuildInfo.current) starting") == true, "\(daemon.log())")
        #expect(line?.contains("version=\(BuildInfo.version)") == true)
        let (status, metrics) = try await daemon.get("/metrics")
        #expect(status == 200)
        #expect(metrics.contains(#"tether_build_info{version="\#(BuildInfo.version)",commit="unknown"} 1"#), "\(metrics)")
    }
}
