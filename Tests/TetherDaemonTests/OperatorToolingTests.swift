import Foundation
import Testing
import TetherDaemon

/// What an operator gets around the daemon: `--version`, the build in the start log and in
/// `/metrics`, and shell completions generated from the command definitions.
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

    // MARK: Completions

    /// The subcommands the binary has, as its argument parser describes them.
    static func subcommandNames() async throws -> [String] {
        let result = try await DaemonProcess.run(["--experimental-dump-help"])
        struct Dump: Decodable {
            struct Command: Decodable {
                var commandName: String
                var subcommands: [Command]?
            }
            var command: Command
        }
        let dump = try JSONDecoder().decode(Dump.self, from: Data(result.stdout.utf8))
        return (dump.command.subcommands ?? []).map(\.commandName).filter { $0 != "help" }
    }

    @Test(arguments: ["bash", "zsh", "fish"])
    func completionsNameEverySubcommand(shell: String) async throws {
        let names = try await Self.subcommandNames()
        #expect(names.contains("check-config") && names.contains("status") && names.contains("completions"), "\(names)")
        let result = try await DaemonProcess.run(["completions", shell])
        #expect(result.code == 0, "\(result.stderr)")
        #expect(result.stdout.count > 500)
        for name in names {
            #expect(result.stdout.contains(name), "the \(shell) script does not complete `\(name)`")
        }
        // Options of the subcommands, not only their names (fish spells them `-l 'name'`).
        for option in ["config", "json", "socket"] {
            #expect(result.stdout.contains(shell == "fish" ? "-l '\(option)'" : "--\(option)"), "no --\(option) for \(shell)")
        }
    }

    // MARK: Man page

    /// tether(8) as the package makes it: swift-argument-parser's generate-manual run on the
    /// binary (scripts/test builds it with `swift build --product generate-manual`), rendered by man.
    @Test func theManPageRendersAndListsEverySubcommand() async throws {
        let generator = DaemonProcess.binary.deletingLastPathComponent().appendingPathComponent("generate-manual").path
        try #require(
            FileManager.default.isExecutableFile(atPath: generator),
            "no \(generator): build it with `swift build --product generate-manual` (scripts/test does)")
        let folder = try DaemonProcess.folder()
        let generated = try await DaemonProcess.run(
            [DaemonProcess.binary.path, "--section", "8", "--output-directory", folder.path], executable: generator)
        #expect(generated.code == 0, "\(generated.stderr)")
        let page = folder.appendingPathComponent("tether.8").path
        // groff warns on stderr about anything it cannot render; -z discards the output.
        let lint = try await DaemonProcess.run(["-mandoc", "-Tutf8", "-ww", "-z", page], executable: "/usr/bin/groff")
        #expect(lint.code == 0 && lint.stderr.isEmpty, "\(lint.stderr)")
        let rendered = try await DaemonProcess.run(
            ["-l", page], environment: ["MANWIDTH": "100", "MAN_KEEP_FORMATTING": "0", "PATH": "/usr/bin:/bin"],
            executable: "/usr/bin/man")
        #expect(rendered.code == 0, "\(rendered.stderr)")
        // man may overstrike bold text when its output is not a terminal: compare letters only.
        let text = rendered.stdout.replacingOccurrences(of: ".\u{8}", with: "", options: .regularExpression)
        #expect(text.hasPrefix("TETHER(8)"), "\(text.prefix(200))")
        for name in try await Self.subcommandNames() {
            #expect(text.contains("\n     \(name) ") || text.contains("\n     \(name)\n"), "the man page does not list `\(name)`")
        }
        #expect(text.contains("--config config"))
    }

    @Test func completionsForAnUnknownShellSayWhichExist() async throws {
        let result = try await DaemonProcess.run(["completions", "powershell"])
        #expect(result.code == 64)
        #expect(result.stderr.contains("powershell"))
        #expect(result.stderr.contains("bash") && result.stderr.contains("zsh") && result.stderr.contains("fish"), "\(result.stderr)")
    }
}
