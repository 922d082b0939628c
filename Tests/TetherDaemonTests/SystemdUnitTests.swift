import Foundation
import Testing

/// The shipped unit passes systemd's own checks (PID 1 here is not systemd: the tools only).
@Suite struct SystemdUnitTests {
    static let unitsFolder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("systemd")

    /// The unit with ExecStart pointing at the binary just built, so verify checks a real executable.
    static func unitUnderTest() throws -> String {
        let text = try String(contentsOf: unitsFolder.appendingPathComponent("tether.service"), encoding: .utf8)
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tether-unit-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let path = folder.appendingPathComponent("tether.service").path
        try text.replacingOccurrences(of: "/usr/local/bin/tether", with: DaemonProcess.binary.path)
            .write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func verifyPrintsNothing() async throws {
        let result = try await DaemonProcess.run(["verify", "--man=no", try Self.unitUnderTest()], executable: "/usr/bin/systemd-analyze")
        #expect(result.code == 0)
        // verify exits 0 even for unknown keys and bad values: any output is a finding.
        #expect(result.stderr.isEmpty, "\(result.stderr)")
        #expect(result.stdout.isEmpty, "\(result.stdout)")
    }

    @Test func securityExposureIsAtMostTwo() async throws {
        let result = try await DaemonProcess.run(
            ["security", "--offline=true", "--man=no", "--threshold=20", try Self.unitUnderTest()], executable: "/usr/bin/systemd-analyze")
        #expect(result.code == 0, "\(result.stdout.suffix(400))")
        let line = result.stdout.split(separator: "\n").first { $0.contains("Overall exposure level") }
        let score = line.flatMap { $0.split(separator: ":").last?.split(separator: " ").first }.flatMap { Double($0) }
        #expect(score != nil && score! <= 2.0, "\(line ?? "no exposure line")")
    }

    @Test func unitDeclaresWhatTheSpecAsks() throws {
        let text = try String(contentsOf: Self.unitsFolder.appendingPathComponent("tether.service"), encoding: .utf8)
        for line in [
            "Type=notify", "WatchdogSec=", "ExecReload=", "User=tether", "StateDirectory=tether", "RuntimeDirectory=tether",
            "ConfigurationDirectory=tether", "ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes",
            "RestrictAddressFamilies=", "SystemCallFilter=@system-service",
        ] {
            #expect(text.contains(line), "missing \(line)")
        }
    }

    /// `@resources` is denied, but the decision log's writer threads lower their own scheduling
    /// priority (`sched_setscheduler`, `setpriority`): an allow line after the deny gives those
    /// two back (systemd applies the lines in order), or under the unit they would compete with
    /// the checks at full priority.
    @Test func theFilterLetsThreadsLowerTheirOwnPriority() throws {
        let filters = try String(contentsOf: Self.unitsFolder.appendingPathComponent("tether.service"), encoding: .utf8)
            .split(separator: "\n").filter { $0.hasPrefix("SystemCallFilter=") }
            .map { $0.dropFirst("SystemCallFilter=".count) }
        let deny = try #require(filters.firstIndex { $0.hasPrefix("~") && $0.contains("@resources") })
        let allowedAfter = filters[(deny + 1)...].filter { !$0.hasPrefix("~") }.flatMap { $0.split(separator: " ") }
        #expect(allowedAfter.contains("sched_setscheduler") && allowedAfter.contains("setpriority"))
        #expect(!allowedAfter.contains("sched_setaffinity") && !allowedAfter.contains("setrlimit"), "only those two")
    }

    /// Operators reach the socket through a group of their own; the secret files belong to the
    /// daemon's group, which operators are not in. PrivateUsers= would hide operators' uids.
    @Test func operatorsAndSecretsHaveDifferentGroups() throws {
        func lines(_ name: String) throws -> [[Substring]] {
            try String(contentsOf: Self.unitsFolder.appendingPathComponent(name), encoding: .utf8)
                .split(separator: "\n").filter { !$0.hasPrefix("#") }.map { $0.split(separator: " ") }
        }
        let unit = try String(contentsOf: Self.unitsFolder.appendingPathComponent("tether.service"), encoding: .utf8)
            .split(separator: "\n").filter { !$0.hasPrefix("#") }
        #expect(unit.contains("Group=tether"))
        #expect(unit.contains("SupplementaryGroups=tether-operators"))
        #expect(!unit.contains { $0.hasPrefix("PrivateUsers=") }, "PrivateUsers= maps every operator to the overflow uid")

        let sysusers = try lines("tether.sysusers")
        #expect(sysusers.contains { $0.first == "u" && $0.dropFirst().first == "tether" })
        #expect(sysusers.contains { $0.first == "g" && $0.dropFirst().first == "tether-operators" })

        let secrets = try lines("tether.tmpfiles").filter { entry in
            [".token", ".secret", ".password", ".key"].contains { suffix in entry.dropFirst().first?.hasSuffix(suffix) == true }
        }
        #expect(secrets.count == 4)
        for entry in secrets {
            #expect(entry.dropFirst(2).prefix(3).map(String.init) == ["0640", "root", "tether"], "\(entry)")
        }

        let example = try String(
            contentsOf: Self.unitsFolder.deletingLastPathComponent().appendingPathComponent("config/tether.yaml"), encoding: .utf8)
        #expect(example.contains("group: tether-operators"), "the example configuration documents admin.group")
    }
}
