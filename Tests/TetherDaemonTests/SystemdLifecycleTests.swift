import Foundation
import GRDB
import Testing
@testable import TetherStore
#if canImport(Glibc)
import Glibc
#endif

/// The real daemon binary under a stand-in for systemd's notify socket (SPEC §11).
@Suite(.serialized) struct SystemdLifecycleTests {
    static let config = """
        agents:
          - { id: support-copilot, kind: delegated, sponsor: jdoe }
        policies:
          - id: support-tickets
            when: { memberOf: support }
            grant: [ { agent: support-copilot, scopes: [tickets:read], resource: "zendesk:queue/{department}" } ]
        """

    @Test func readyComesOnceTheListenersAnswer() async throws {
        let daemon = try DaemonProcess(config: Self.config)
        defer { daemon.stop() }
        try await daemon.waitUntilReady()
        // READY=1 is only sent after both listeners are bound: both answer right away.
        let (status, body) = try await daemon.get("/healthz")
        #expect(status == 200)
        #expect(body == "ok\n")
        #expect(try await daemon.cli(["status", "--json"]).code == 0)
        // The admin socket carries admin.mode (the harness asks for 0600) and belongs to the
        // daemon's user and group: with systemd's unit, tether:tether.
        var info = stat()
        #expect(stat(daemon.socketPath, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
        #expect(info.st_uid == getuid() && info.st_gid == getgid())
        #expect((info.st_mode & S_IFMT) == S_IFSOCK)
        let statuses = daemon.notify.messages().filter { $0.contains("STATUS=") }
        #expect(statuses.contains { $0.contains("STATUS=opening store") })
        #expect(statuses.contains { $0.contains("STATUS=serving") })
        #expect(!statuses.contains { $0.contains("upgrading") }, "a new store is created, not upgraded")
        let ready = try await eventually { try await daemon.get("/readyz").0 == 200 }
        #expect(ready)
    }

    /// A store written by an older version is upgraded before the daemon answers: the log
    /// and STATUS= say so, and systemd is asked for more time first, so a start timeout
    /// cannot kill a long upgrade half way and start it again.
    @Test func anOlderStoreIsUpgradedWithSystemdAskedForTime() async throws {
        let folder = try DaemonProcess.folder()
        let state = folder.appendingPathComponent("state")
        try FileManager.default.createDirectory(at: state, withIntermediateDirectories: true)
        let older = try DatabaseQueue(path: state.appendingPathComponent("tether.db").path)
        try SQLiteStateStore.migrator.migrate(older, upTo: "v7: revocation windows")
        try older.close()

        let daemon = try DaemonProcess(config: Self.config, folder: folder)
        defer { daemon.stop() }
        try await daemon.waitUntilReady()
        let messages = daemon.notify.messages()
        let upgrading = try #require(messages.firstIndex { $0.contains("STATUS=upgrading the store") })
        let extended = try #require(messages.firstIndex { $0.contains("EXTEND_TIMEOUT_USEC=60000000") })
        let ready = try #require(messages.firstIndex { $0.contains("READY=1") })
        #expect(upgrading < extended && extended < ready)
        #expect(daemon.log().contains("tether is upgrading its store"))
        #expect(daemon.log().contains("v8: audit without an index of its hashes"))
        #expect(try await daemon.cli(["audit", "verify"]).code == 0)
    }

    @Test func watchdogPingsStopWhileTheReconcileLoopIsWedged() async throws {
        let daemon = try DaemonProcess(config: Self.config, watchdogMicroseconds: 400_000)
        defer { daemon.stop() }
        try await daemon.waitUntilReady()
        #expect(await daemon.notify.wait(timeout: 5) { $0 == "WATCHDOG=1" } != nil)

        #expect(try await daemon.cli(["debug-wedge"]).code != 0, "the wedge hook is not a CLI command")
        try await Self.adminPost(daemon, "/v1/debug/wedge?on=true")
        // The loop beats once a second; the watchdog allows two intervals (400 ms). Once the
        // window has passed, no ping may arrive for several intervals.
        #expect(try await eventually(timeout: 10) { await Self.quietFor(daemon, seconds: 1.2) })
        #expect(daemon.log().contains("reconcile loop is not beating"))

        try await Self.adminPost(daemon, "/v1/debug/wedge?on=false")
        daemon.notify.reset()
        #expect(await daemon.notify.wait(timeout: 10) { $0 == "WATCHDOG=1" } != nil)
    }

    @Test func sighupReloadsAValidConfigAndKeepsTheOldOneWhenBroken() async throws {
        let daemon = try DaemonProcess(config: Self.config)
        defer { daemon.stop() }
        try await daemon.waitUntilReady()
        let before = try await daemon.cli(["status", "--json"]).stdout

        try daemon.rewrite(config: Self.config.replacingOccurrences(of: "tickets:read]", with: "tickets:read, tickets:write]"))
        daemon.notify.reset()
        daemon.signal(SIGHUP)
        let reloading = await daemon.notify.wait { $0.contains("RELOADING=1") }
        #expect(reloading?.contains("MONOTONIC_USEC=") == true)
        #expect(await daemon.notify.wait { $0.contains("READY=1") } != nil)
        #expect(try await eventually { try await daemon.cli(["audit", "--json"]).stdout.contains("\"action\":\"config.reloaded\"") })
        let after = try await daemon.cli(["status", "--json"]).stdout
        #expect(Self.policySet(before) != Self.policySet(after))

        try daemon.rewrite(config: Self.config + "\nbogus: true\n")
        daemon.notify.reset()
        daemon.signal(SIGHUP)
        #expect(await daemon.notify.wait { $0.contains("READY=1") } != nil)
        #expect(try await eventually { try await daemon.cli(["audit", "--json"]).stdout.contains("\"action\":\"config.rejected\"") })
        let rejected = try await daemon.cli(["status", "--json"])
        #expect(Self.policySet(rejected.stdout) == Self.policySet(after), "the running configuration is kept")
        #expect(rejected.stdout.contains("bogus"))
        #expect(rejected.code == 1, "status reports the rejected configuration")
        #expect(try await daemon.cli(["reload"]).code == 2)
    }

    @Test func sigtermStopsCleanlyWithStopping() async throws {
        let daemon = try DaemonProcess(config: Self.config)
        defer { daemon.stop() }
        try await daemon.waitUntilReady()
        daemon.signal(SIGTERM)
        #expect(await daemon.waitForExit(timeout: 10) == 0)
        #expect(daemon.notify.messages().contains { $0.contains("STOPPING=1") })
        #expect(!FileManager.default.fileExists(atPath: daemon.socketPath))
    }

    @Test func aBrokenConfigurationAtStartIsExitTwoWithLocatedErrors() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tether-bad-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let path = folder.appendingPathComponent("tether.yaml").path
        try "policies:\n  - id: p\n    when: { memberOf: x }\n    grant: [ { agent: \"ghost!\", scopes: [a], resource: r } ]\n".write(toFile: path, atomically: true, encoding: .utf8)
        let serve = try await DaemonProcess.run(["serve", "--config", path])
        #expect(serve.code == 2)
        #expect(serve.stderr.contains("tether.yaml:4:"))
        #expect(serve.stderr.contains("ghost"))
        let check = try await DaemonProcess.run(["check-config", "--config", path])
        #expect(check.code == 2)
        #expect(check.stdout.contains("policies[0].grant[0].agent"))
    }

    /// Secrets are read before the store is opened: a missing one creates nothing.
    @Test func aMissingSecretFileAtStartIsExitTwoAndCreatesNoStore() async throws {
        let folder = try DaemonProcess.folder(files: ["check.token": "check-token"])
        let path = folder.appendingPathComponent("tether.yaml").path
        try DaemonProcess.write(
            config: """
                sources:
                  hr: { secretFiles: [missing-hr.secret] }
                check: { tokenFile: check.token }
                \(DaemonProcess.supportCopilot)
                """,
            to: path, port: try DaemonProcess.freePort(), socket: folder.appendingPathComponent("admin.sock").path)
        let serve = try await DaemonProcess.run(["serve", "--config", path])
        #expect(serve.code == 2, "\(serve.stderr)")
        #expect(serve.stderr.contains("missing-hr.secret"), "\(serve.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("state/tether.db").path))
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("state").path))
    }

    // MARK: Helpers

    static func policySet(_ statusJSON: String) -> String? {
        (try? JSONSerialization.jsonObject(with: Data(statusJSON.utf8)) as? [String: Any])?["policySet"] as? String
    }

    /// True when no WATCHDOG=1 arrives during `seconds`.
    static func quietFor(_ daemon: DaemonProcess, seconds: TimeInterval) async -> Bool {
        daemon.notify.reset()
        return await daemon.notify.wait(timeout: seconds) { $0 == "WATCHDOG=1" } == nil
    }

    static func adminPost(_ daemon: DaemonProcess, _ path: String) async throws {
        let script = "import socket,sys\ns=socket.socket(socket.AF_UNIX)\ns.connect(sys.argv[1])\ns.sendall(b'POST \(path) HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 0\\r\\nConnection: close\\r\\n\\r\\n')\nprint(s.recv(4096).split(b' ')[1].decode())\n"
        let result = try await DaemonProcess.run(["-c", script, daemon.socketPath], environment: nil, executable: "/usr/bin/python3")
        guard result.stdout.hasPrefix("200") else { throw DaemonTestError("admin \(path) answered \(result.stdout) \(result.stderr)") }
    }
}

