import Foundation
import Testing
import TetherCore

/// `tether agents add|update|disable|enable|remove|sponsors` against the running daemon over
/// its admin socket, and what status, explain and /metrics say of the agents (SPEC §15).
@Suite(.serialized) struct AgentCLITests {
    /// A policy naming triage-bot, which the file does not declare: it is registered at runtime.
    static let config = OperatorCLITests.agents + """

        policies:
          - id: support-tickets
            when: { attribute: { name: department, in: [Support] } }
            grant:
              - { agent: support-copilot, scopes: [tickets:read], resource: "zendesk:queue/{department}" }
              - { agent: triage-bot, scopes: [tickets:triage], resource: "zendesk:queue/{department}" }
        """
    static let staff = [("jdoe", 1001), ("alice", 1002), ("bob", 1003)]

    static func json(_ text: String) -> Any? { try? JSONSerialization.jsonObject(with: Data(text.utf8)) }

    static func agent(_ id: String, in daemon: some DaemonUnderTest) async throws -> [String: Any]? {
        let rows = json(try await daemon.cli(["agents", "--json"]).stdout) as? [[String: Any]] ?? []
        return rows.first { $0["id"] as? String == id }
    }

    static func triageGrants(_ daemon: some DaemonUnderTest) async throws -> Int {
        let grants = json(try await daemon.cli(["grants", "--agent", "triage-bot", "--json"]).stdout) as? [[String: Any]]
        return grants?.count ?? -1
    }

    @Test func operatorsRegisterChangeDisableAndRemoveAnAgent() async throws {
        let folder = try DaemonProcess.folder(files: ["hr.secret": "secret-one"])
        try await InProcessDaemon.run(config: Self.config, folder: folder) { daemon in
            #expect(try await daemon.cli(["ingest", "-"], input: Data(HREventLines.joiners(Self.staff).utf8)).code == 0)
            #expect(try await Self.triageGrants(daemon) == 0, "a policy for an agent not registered grants nothing")

            let added = try await daemon.cli([
                "agents", "add", "triage-bot", "--kind", "delegated", "--sponsor", "jdoe", "--sponsor", "alice",
                "--display-name", "Triage bot", "--type", "assistant",
            ])
            #expect(added.code == 0, "\(added.stderr)")
            #expect(added.stdout.contains("triage-bot: agent.registered (active, sponsors jdoe,alice); 3 granted, 0 revoked"))
            #expect(try await Self.triageGrants(daemon) == 3)
            let row = try #require(try await Self.agent("triage-bot", in: daemon))
            #expect(row["source"] as? String == "operator")
            #expect(row["sponsors"] as? [String] == ["jdoe", "alice"])
            #expect(row["activeSponsors"] as? [String] == ["jdoe", "alice"])
            #expect(row["status"] as? String == "active")
            #expect(row["displayName"] as? String == "Triage bot")
            #expect(row["agentType"] as? String == "assistant")
            let configured = try #require(try await Self.agent("support-copilot", in: daemon))
            #expect(configured["source"] as? String == "config" && configured["sponsor"] as? String == "jdoe")

            // status and /metrics name the agents down to one active sponsor.
            var status = Self.json(try await daemon.cli(["status", "--json"]).stdout) as? [String: Any]
            var single = (status?["agentsAtOneSponsor"] as? [[String: Any]])?.compactMap { $0["id"] as? String }
            #expect(single == ["support-copilot"])
            var metrics = try await daemon.get("/metrics").1
            #expect(metrics.contains(#"tether_agent_active_sponsors{agent="triage-bot"} 2.0"#), "\(metrics)")
            #expect(metrics.contains(#"tether_agent_active_sponsors{agent="support-copilot"} 1.0"#))

            let removedSponsor = try await daemon.cli(["agents", "sponsors", "triage-bot", "--remove", "alice", "--json"])
            #expect(removedSponsor.code == 0, "\(removedSponsor.stderr)")
            let result = try #require(Self.json(removedSponsor.stdout) as? [String: Any])
            #expect(result["action"] as? String == "agent.updated")
            #expect(result["revision"] is Int)
            #expect((result["agent"] as? [String: Any])?["sponsors"] as? [String] == ["jdoe"])
            status = Self.json(try await daemon.cli(["status", "--json"]).stdout) as? [String: Any]
            single = (status?["agentsAtOneSponsor"] as? [[String: Any]])?.compactMap { $0["id"] as? String }
            #expect(single == ["support-copilot", "triage-bot"])
            #expect(try await daemon.cli(["status"]).stdout.contains("agents down to one active sponsor"))
            metrics = try await daemon.get("/metrics").1
            #expect(metrics.contains(#"tether_agent_active_sponsors{agent="triage-bot"} 1.0"#))

            // The configuration's agents refuse these commands, naming the file.
            let refused = try await daemon.cli(["agents", "update", "support-copilot", "--display-name", "Copilot"])
            #expect(refused.code == 1)
            #expect(refused.stderr.contains("agent support-copilot is declared in \(daemon.configPath)"), "\(refused.stderr)")
            for arguments in [["agents", "disable", "support-copilot"], ["agents", "remove", "support-copilot"],
                              ["agents", "sponsors", "support-copilot", "--add", "bob"]] {
                let result = try await daemon.cli(arguments)
                #expect(result.code == 1 && result.stderr.contains("declared in"), "\(arguments): \(result.stderr)")
            }
            let badKind = try await daemon.cli(["agents", "add", "robot", "--kind", "robotic", "--sponsor", "jdoe"])
            #expect(badKind.code == 1 && badKind.stderr.contains("unknown kind 'robotic'; expected delegated or autonomous"))
            let clash = try await daemon.cli(["agents", "add", "triage-bot", "--kind", "delegated", "--sponsor", "jdoe"])
            #expect(clash.code == 1 && clash.stderr.contains("already registered"))
            let badGrant = try await daemon.cli(["agents", "add", "ledger", "--kind", "autonomous", "--sponsor", "jdoe", "--grant", "read"])
            #expect(badGrant.code != 0 && badGrant.stderr.contains("is not SCOPE=RESOURCE"))

            // Disabled: every grant revoked, and the check denies at once.
            let disabled = try await daemon.cli(["agents", "disable", "triage-bot"])
            #expect(disabled.stdout.contains("triage-bot: agent.disabled (disabled, sponsors jdoe); 0 granted, 3 revoked"), "\(disabled.stdout)")
            #expect(try await Self.triageGrants(daemon) == 0)
            let explained = try await daemon.cli(["explain", "alice", "triage-bot", "tickets:triage", "zendesk:queue/Support"])
            #expect(explained.code == 1 && explained.stdout.contains("DENIED: agent triage-bot is disabled"), "\(explained.stdout)")
            #expect(try await daemon.cli(["agents", "enable", "triage-bot"]).stdout.contains("agent.updated (active"))
            #expect(try await Self.triageGrants(daemon) == 3)

            // An autonomous agent with its own grants, then every agent removed.
            let ledger = try await daemon.cli([
                "agents", "add", "ledger-bot", "--kind", "autonomous", "--sponsor", "bob", "--grant", "ledger:read=erp:ledger/*",
                "--grant", "ledger:export=erp:ledger/*",
            ])
            #expect(ledger.stdout.contains("2 granted"), "\(ledger.stdout) \(ledger.stderr)")
            let removed = try await daemon.cli(["agents", "remove", "triage-bot", "--json"])
            #expect((Self.json(removed.stdout) as? [String: Any])?["action"] as? String == "agent.deleted")
            #expect(try await Self.agent("triage-bot", in: daemon) == nil)
            #expect(try await Self.triageGrants(daemon) == 0)

            let audit = try await daemon.cli(["audit", "--agent", "triage-bot", "--json"]).stdout
            let actions = audit.split(separator: "\n").compactMap { (Self.json(String($0)) as? [String: Any])?["action"] as? String }
            #expect(actions.filter { $0.hasPrefix("agent.") } == [
                "agent.registered", "agent.updated", "agent.disabled", "agent.updated", "agent.deleted",
            ])
            #expect(audit.contains(#""actor":"operator:"#))
        }
    }

    @Test func registeredAgentsAndTheirGrantsSurviveARestartOfTheDaemon() async throws {
        let folder = try DaemonProcess.folder(files: ["hr.secret": "secret-one"])
        let daemon = try DaemonProcess(config: Self.config, folder: folder)
        defer { daemon.stop() }
        try await daemon.waitUntilReady()
        #expect(try await daemon.cli(["ingest", "-"], input: Data(HREventLines.joiners(Self.staff).utf8)).code == 0)
        #expect(try await daemon.cli(["agents", "add", "triage-bot", "--kind", "delegated", "--sponsor", "jdoe"]).code == 0)
        #expect(try await daemon.cli(["agents", "add", "old-bot", "--kind", "delegated", "--sponsor", "jdoe"]).code == 0)
        #expect(try await daemon.cli(["agents", "disable", "old-bot"]).code == 0)
        #expect(await daemon.stopAndWait())

        try daemon.launch()
        try await daemon.waitUntilReady()
        #expect(try await Self.agent("triage-bot", in: daemon)?["status"] as? String == "active")
        #expect(try await Self.agent("old-bot", in: daemon)?["status"] as? String == "disabled")
        // The first reconciliation after the start kept the registered agent's grants.
        #expect(try await Self.triageGrants(daemon) == 3)
        let explained = try await daemon.cli(["explain", "alice", "triage-bot", "tickets:triage", "zendesk:queue/Support"])
        #expect(explained.code == 0, "\(explained.stdout)")
    }
}
