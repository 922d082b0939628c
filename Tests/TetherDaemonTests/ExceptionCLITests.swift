import Foundation
import Testing
import TetherCore

/// `tether exceptions` against the running daemon over its admin socket (SPEC §17).
@Suite(.serialized) struct ExceptionCLITests {
    static func json(_ text: String) -> Any? { try? JSONSerialization.jsonObject(with: Data(text.utf8)) }

    static func grantLines(_ daemon: InProcessDaemon) async throws -> Set<String> {
        let grants = json(try await daemon.cli(["grants", "--json"]).stdout) as? [[String: Any]] ?? []
        return Set(grants.map { "\($0["subject"] ?? "") \($0["scope"] ?? "") \($0["resource"] ?? "")" })
    }

    @Test func operatorsGrantDenyListExplainAndRemoveExceptions() async throws {
        let folder = try DaemonProcess.folder(files: ["hr.secret": "secret-one"])
        try await InProcessDaemon.run(config: OperatorCLITests.withPolicy + "\nexceptions: { maxDuration: 30d }\n", folder: folder) {
            daemon in
            #expect(try await daemon.cli(["ingest", "-"], input: Data(HREventLines.joiners(OperatorCLITests.staff).utf8)).code == 0)
            #expect(try await daemon.cli(["exceptions", "--json"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "[]")

            // A grant no policy gives, for a week.
            let granted = try await daemon.cli([
                "exceptions", "grant", "alice", "support-copilot", "tickets:write", "zendesk:queue/Support", "--until", "7d",
                "--reason", "covering the escalation queue",
            ])
            #expect(granted.code == 0, "\(granted.stderr)")
            #expect(granted.stdout.contains("1 granted, 0 revoked"))
            #expect(try await Self.grantLines(daemon).contains("alice tickets:write zendesk:queue/Support"))
            let rows = try #require(Self.json(try await daemon.cli(["exceptions", "--json"]).stdout) as? [[String: Any]])
            #expect(rows.count == 1)
            #expect(rows.first.map { Set($0.keys) } == [
                "id", "effect", "subject", "agent", "scope", "resource", "until", "reason", "approver", "createdAt",
            ])
            let grantID = try #require(rows.first?["id"] as? String)
            #expect((rows.first?["approver"] as? String)?.hasPrefix("operator:") == true)
            let explained = try await daemon.cli(["explain", "alice", "support-copilot", "tickets:write", "zendesk:queue/Support"])
            #expect(explained.code == 0)
            #expect(explained.stdout.contains("ALLOWED: granted by exception \(grantID)"))
            #expect(explained.stdout.contains("exception:  \(grantID) (grant)"))
            #expect(explained.stdout.contains("covering the escalation queue"))

            // A deny beats policy: bob's policy grant goes, and the answer names the deny.
            let denied = try await daemon.cli([
                "exceptions", "deny", "bob", "support-copilot", "tickets:read", "zendesk:queue/*", "--reason", "on leave of absence",
            ])
            #expect(denied.code == 0, "\(denied.stderr)")
            #expect(denied.stdout.contains("until removed; 0 granted, 1 revoked"))
            #expect(!(try await Self.grantLines(daemon).contains("bob tickets:read zendesk:queue/Support")))
            let refused = try await daemon.cli(["explain", "bob", "support-copilot", "tickets:read", "zendesk:queue/Support"])
            #expect(refused.code == 1)
            #expect(refused.stdout.contains("DENIED: denied by exception x_"))
            #expect(refused.stdout.contains("on leave of absence"))

            // What cannot stand is refused with what is wrong, and changes nothing.
            for (arguments, message) in [
                (["--until", "60d"], "exceptions.maxDuration (30d)"),
                (["--until", "2001-01-01T00:00:00Z"], "is not in the future"),
                (["--until", "soon"], "expected an RFC 3339 time"),
            ] {
                let result = try await daemon.cli(
                    ["exceptions", "grant", "carol", "support-copilot", "tickets:write", "zendesk:queue/Support", "--reason", "r"]
                        + arguments)
                #expect(result.code == 1)
                #expect(result.stderr.contains(message), "\(result.stderr)")
            }
            let metrics = try await daemon.get("/metrics").1
            #expect(metrics.contains(#"tether_exceptions{effect="grant"} 1.0"#), "\(metrics)")
            #expect(metrics.contains(#"tether_exceptions{effect="deny"} 1.0"#))
            let missing = try await daemon.cli(["exceptions", "grant", "carol", "support-copilot", "s", "r", "--reason", "r"])
            #expect(missing.code != 0)
            #expect(missing.stderr.contains("--until"))
            #expect((Self.json(try await daemon.cli(["exceptions", "--json"]).stdout) as? [Any])?.count == 2)

            // Removing the deny gives bob his grant back; removing it again is an error.
            let denyID = try #require((Self.json(try await daemon.cli(["exceptions", "--json"]).stdout) as? [[String: Any]])?
                .first { $0["effect"] as? String == "deny" }?["id"] as? String)
            let removed = try await daemon.cli(["exceptions", "remove", denyID])
            #expect(removed.code == 0)
            #expect(removed.stdout.contains("1 granted, 0 revoked"))
            #expect(try await Self.grantLines(daemon).contains("bob tickets:read zendesk:queue/Support"))
            let again = try await daemon.cli(["exceptions", "remove", denyID])
            #expect(again.code == 1)
            #expect(again.stderr.contains("no exception has that id"))

            let audit = try await daemon.cli(["audit", "--json"]).stdout.split(separator: "\n")
                .compactMap { Self.json(String($0)) as? [String: Any] }
            #expect(audit.filter { $0["action"] as? String == "exception.added" }.count == 2)
            #expect(audit.filter { $0["action"] as? String == "exception.removed" }.count == 1)
            #expect(try await daemon.cli(["audit", "verify"]).code == 0)
        }
    }

    /// The daemon's scheduler ends an exception at its end (the end itself is tested on an
    /// injected clock in the engine's tests; this is the running daemon's turn doing it).
    @Test func theRunningDaemonEndsAnExceptionAtItsEnd() async throws {
        let folder = try DaemonProcess.folder(files: ["hr.secret": "secret-one"])
        try await InProcessDaemon.run(config: OperatorCLITests.withPolicy, folder: folder) { daemon in
            #expect(try await daemon.cli(["ingest", "-"], input: Data(HREventLines.joiners(OperatorCLITests.staff).utf8)).code == 0)
            let granted = try await daemon.cli([
                "exceptions", "grant", "carol", "support-copilot", "tickets:write", "zendesk:queue/Support", "--until", "1s",
                "--reason", "one second",
            ])
            #expect(granted.code == 0, "\(granted.stderr)")
            #expect(try await eventually {
                try await !Self.grantLines(daemon).contains("carol tickets:write zendesk:queue/Support")
            })
            #expect(try await daemon.cli(["exceptions", "--json"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "[]")
            let actions = try await daemon.cli(["audit", "--json"]).stdout.split(separator: "\n")
                .compactMap { Self.json(String($0)) as? [String: Any] }.suffix(2).map { $0["action"] as? String }
            #expect(actions == ["exception.expired", "grant.expired"])
            #expect(daemon.log().contains("exception reached its end and was removed"))
        }
    }
}
