import Foundation
import HummingbirdTesting
import Testing

/// The scim2-tester checks (PyPI `scim2-cli`, `scim2 … test`) against a live server.
///
/// The tool is installed once into a virtual environment in `.build/scim2-venv`. If it cannot
/// be installed (no Python, no package index) the test fails: a compliance claim needs it.
@Suite struct SCIMComplianceTests {
    /// Checks scim2-tester reports SKIPPED, and why (docs/scim.md explains each).
    static let expectedSkips: Set<String> = []

    @Test func scim2TesterReportsNoErrorCriticalOrDeviation() async throws {
        let scim2 = try SCIM2Tool.install()
        let world = try World()
        let output = try await world.withLiveServerResult { client -> SCIM2Tool.Output in
            let port = try #require(client.port)
            return try await SCIM2Tool.run(
                scim2, arguments: ["--url", "http://127.0.0.1:\(port)/scim/v2", "test"],
                environment: ["SCIM_CLI_HEADERS": "Authorization: Bearer \(World.token)"])
        }
        if let path = ProcessInfo.processInfo.environment["TETHER_SCIM2_OUTPUT"] {
            try? output.text.write(toFile: path, atomically: true, encoding: .utf8)
        }
        let results = SCIM2Tool.results(in: output.text)
        #expect(!world.logs.lines.joined(separator: "\n").contains(World.token), "the bearer token reached the logs")
        #expect(results.count > 50, "scim2 reported too few checks:\n\(output.text)")
        var counts: [String: Int] = [:]
        for result in results { counts[result.status, default: 0] += 1 }
        let failures = results.filter { ["ERROR", "CRITICAL", "DEVIATION"].contains($0.status) }
        for failure in failures {
            Issue.record("scim2-tester \(failure.status) \(failure.title): \(failure.reason)")
        }
        let skipped = results.filter { $0.status == "SKIPPED" }
        for skip in skipped where !Self.expectedSkips.contains(skip.title) {
            Issue.record("scim2-tester skipped \(skip.title) without a documented reason: \(skip.reason)")
        }
        let unknown = results.filter { !["SUCCESS", "COMPLIANT", "ACCEPTABLE", "SKIPPED", "ERROR", "CRITICAL", "DEVIATION"].contains($0.status) }
        #expect(unknown.isEmpty, "unexpected statuses: \(unknown)")
        if failures.isEmpty, skipped.isEmpty {
            // scim2 exits 1 on any result that is not a plain success.
            #expect(output.status == 0, "scim2 exited \(output.status):\n\(output.text)")
        }
        print("scim2-tester: " + counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", "))
    }
}

extension World {
    func withLiveServerResult<T: Sendable>(_ test: @Sendable (any TestClientProtocol) async throws -> T) async throws -> T {
        defer { remove() }
        try await engine.loadIndex()
        return try await application().test(.live) { client in try await test(client) }
    }
}

/// Installing and running the scim2 command line tool.
enum SCIM2Tool {
    struct Check: Sendable, CustomStringConvertible {
        var status: String
        var title: String
        var reason: String
        var description: String { "\(status) \(title): \(reason)" }
    }

    struct Output: Sendable {
        var status: Int32
        var text: String
    }

    /// The package's root, from this file's path.
    static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    /// The versions checked against; docs/scim.md says how to move to newer ones.
    static let requirements = ["scim2-cli==0.6.0", "scim2-tester==0.5.2"]

    /// `.build/scim2-venv/bin/scim2`, installed (again) unless the pinned versions are there.
    static func install() throws -> URL {
        let venv = packageRoot.appendingPathComponent(".build/scim2-venv")
        let scim2 = venv.appendingPathComponent("bin/scim2")
        let marker = venv.appendingPathComponent("tether-requirements.txt")
        let wanted = requirements.joined(separator: "\n")
        if FileManager.default.isExecutableFile(atPath: scim2.path),
            (try? String(contentsOf: marker, encoding: .utf8)) == wanted
        {
            return scim2
        }
        try? FileManager.default.removeItem(at: venv)
        let python = ProcessInfo.processInfo.environment["PYTHON"] ?? "python3"
        let created = try runSync("/usr/bin/env", [python, "-m", "venv", venv.path])
        guard created.status == 0 else {
            throw ToolError("cannot create a Python virtual environment at \(venv.path) (is python3-venv installed?):\n\(created.text)")
        }
        let pip = venv.appendingPathComponent("bin/pip").path
        let installed = try runSync(pip, ["install", "--quiet"] + requirements)
        guard installed.status == 0, FileManager.default.isExecutableFile(atPath: scim2.path) else {
            try? FileManager.default.removeItem(at: venv)
            throw ToolError("pip could not install scim2-cli from the package index; the SCIM compliance check cannot run:\n\(installed.text)")
        }
        try wanted.write(to: marker, atomically: true, encoding: .utf8)
        return scim2
    }

    struct ToolError: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    static func runSync(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { _, new in new }
        process.environment = env
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Output(status: process.terminationStatus, text: String(decoding: data, as: UTF8.self))
    }

    /// Runs the tool off the cooperative pool (it blocks on the pipe) while the server answers.
    static func run(_ tool: URL, arguments: [String], environment: [String: String]) async throws -> Output {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                continuation.resume(with: Result { try runSync(tool.path, arguments, environment: environment) })
            }
        }
    }

    /// The results in the tool's output: a `STATUS title` line, then an indented reason.
    static func results(in text: String) -> [Check] {
        let statuses: Set<String> = ["SUCCESS", "COMPLIANT", "ACCEPTABLE", "DEVIATION", "ERROR", "CRITICAL", "SKIPPED"]
        var results: [Check] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let plain = String(line)
            if plain.hasPrefix("  "), !results.isEmpty {
                let reason = plain.trimmingCharacters(in: .whitespaces)
                results[results.count - 1].reason += results[results.count - 1].reason.isEmpty ? reason : " " + reason
                continue
            }
            let parts = plain.split(separator: " ", maxSplits: 1)
            if parts.count == 2, statuses.contains(String(parts[0])) {
                results.append(Check(status: String(parts[0]), title: String(parts[1]), reason: ""))
            }
        }
        return results
    }
}
