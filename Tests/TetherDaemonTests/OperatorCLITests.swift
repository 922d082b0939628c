import Foundation
import Testing
import TetherCore
import TetherStore

/// Every operator command against the running daemon over its admin socket (SPEC §10).
@Suite(.serialized) struct OperatorCLITests {
    static let agents = """
        lifecycle: { precedence: [hr, scim, ldap] }
        sources:
          hr: { secretFiles: [hr.secret] }
        agents:
          - { id: support-copilot, kind: delegated, sponsor: jdoe }
        safety: { maxRevocationsPerRun: 3, maxRevocationRatio: 1.0, minGrantsForRatio: 1000 }
        """
    static let withPolicy = agents + """

        policies:
          - id: support-tickets
            when: { attribute: { name: department, in: [Support] } }
            grant: [ { agent: support-copilot, scopes: [tickets:read], resource: "zendesk:queue/{department}" } ]
        """
    static let withoutPolicy = agents + "\npolicies: []\n"

    static let staff = [("jdoe", 1001), ("alice", 1002), ("bob", 1003), ("carol", 1004), ("dave", 1005)]

    /// Runs `test` against a daemon in this process, configured `withPolicy`.
    static func inProcess(_ test: (InProcessDaemon) async throws -> Void) async throws {
        let folder = try DaemonProcess.folder(files: ["hr.secret": "secret-one"])
        try await InProcessDaemon.run(config: withPolicy, folder: folder, test: test)
    }

    /// Starts the daemon binary configured `withPolicy`: for what is recorded in its process, as
    /// its swift-metrics counters are.
    static func start() async throws -> DaemonProcess {
        let daemon = try DaemonProcess(config: withPolicy, folder: try DaemonProcess.folder(files: ["hr.secret": "secret-one"]))
        try await daemon.waitUntilReady()
        return daemon
    }

    static func json(_ text: String) -> Any? { try? JSONSerialization.jsonObject(with: Data(text.utf8)) }

    @Test func ingestAppliesGoodLinesAndNamesTheBadOnes() async throws {
        try await Self.inProcess { daemon in
            var lines = HREventLines.joiners(Array(Self.staff.prefix(2)))
            lines += "{\"id\": \"evt-bad\", \"type\": \"joiner\"\n"
            lines += HREventLines.event("evt-join-bob", "joiner", user: "bob", employeeNumber: 1003) + "\n"
            let result = try await daemon.cli(["ingest", "-"], input: Data(lines.utf8))
            #expect(result.code == 1)
            #expect(result.stdout.contains("line 1: applied"))
            #expect(result.stdout.contains("line 3: rejected"))
            #expect(result.stdout.contains("line 4: applied"))
            let grants = Self.json(try await daemon.cli(["grants", "--json"]).stdout) as? [[String: Any]]
            #expect(grants?.count == 3)
            #expect(Set(grants?.compactMap { $0["subject"] as? String } ?? []) == ["jdoe", "alice", "bob"])
            #expect(grants?.first.map { Set($0.keys) } == ["id", "subject", "agent", "scope", "resource", "policy", "grantedAt"])
        }
    }

    @Test func explainSaysAllowedOrDeniedInItsExitCode() async throws {
        try await Self.inProcess { daemon in
            #expect(try await daemon.cli(["ingest", "-"], input: Data(HREventLines.joiners(Self.staff).utf8)).code == 0)
            let allowed = try await daemon.cli(["explain", "alice", "support-copilot", "tickets:read", "zendesk:queue/Support"])
            #expect(allowed.code == 0)
            #expect(allowed.stdout.contains("ALLOWED"))
            #expect(allowed.stdout.contains("policy:     support-tickets"))
            let denied = try await daemon.cli(["explain", "alice", "support-copilot", "tickets:write", "zendesk:queue/Support"])
            #expect(denied.code == 1)
            #expect(denied.stdout.contains("DENIED: no grant of tickets:write"))
        }
    }

    @Test func heldPlanIsApprovedWhenFreshAndRefusedWhenStale() async throws {
        try await Self.inProcess { daemon in
            #expect(try await daemon.cli(["ingest", "-"], input: Data(HREventLines.joiners(Self.staff).utf8)).code == 0)

            // Removing the policy would revoke 5 grants, more than maxRevocationsPerRun 3: held.
            try daemon.rewrite(config: Self.withoutPolicy)
            #expect(try await daemon.cli(["reload"]).code == 0)
            let plans = Self.json(try await daemon.cli(["plans", "--json"]).stdout) as? [[String: Any]]
            #expect(plans?.count == 1)
            let held = try #require(plans?.first?["id"] as? String)
            #expect(plans?.first?["held"] as? Bool == true)
            #expect((plans?.first?["reason"] as? String)?.contains("maxRevocationsPerRun 3") == true)
            let status = try await daemon.cli(["status", "--json"])
            #expect((Self.json(status.stdout) as? [String: Any])?["grants"] as? Int == 5)

            // resync --wait recomputes: the same plan is still held, exit 3.
            let resync = try await daemon.cli(["resync", "--wait"])
            #expect(resync.code == 3)
            #expect(resync.stdout.contains(held))

            // The world moves on (an explicit leaver is never held): the held plan is now stale.
            let leaver = HREventLines.event("evt-leave-alice", "leaver", user: "alice", employeeNumber: 1002) + "\n"
            #expect(try await daemon.cli(["ingest", "-"], input: Data(leaver.utf8)).code == 0)
            let stale = try await daemon.cli(["approve", held])
            #expect(stale.code == 1)
            #expect(stale.stderr.contains("plan is stale"))

            // A resync holds the fresh plan, which supersedes the stale one: only it is listed.
            _ = try await daemon.cli(["resync"])
            let listed = { try await (Self.json(daemon.cli(["plans", "--json"]).stdout) as? [[String: Any]])?.compactMap { $0["id"] as? String } }
            let fresh = try #require(try await listed()?.first)
            #expect(try await listed() == [fresh] && fresh != held)
            let superseded = try await daemon.cli(["approve", held])
            #expect(superseded.code == 1 && superseded.stderr.contains("it was rejected by operator:"), "\(superseded.stderr)")
            #expect(superseded.stderr.contains("(superseded)"), "\(superseded.stderr)")

            // Rejected, then held again by the next resync, then approved and applied.
            #expect(try await daemon.cli(["reject", fresh]).code == 0)
            #expect(try await listed() == [])
            _ = try await daemon.cli(["resync"])
            #expect(try await listed() == [fresh])
            let approved = try await daemon.cli(["approve", fresh])
            #expect(approved.code == 0, "\(approved.stderr)")
            #expect((Self.json(try await daemon.cli(["grants", "--json"]).stdout) as? [Any])?.isEmpty == true)
            #expect(try await listed() == [])
            #expect(try await daemon.cli(["approve", "p_doesnotexist"]).code == 1)
            let audit = try await daemon.cli(["audit", "--json"]).stdout
            #expect(audit.contains("\"action\":\"plan.approved\""))
            #expect(audit.contains("\"actor\":\"operator:"))
            #expect(try await daemon.cli(["audit", "verify"]).code == 0)
        }
    }

    @Test func identitiesAgentsPlanAndStatusSpeakTheDocumentedJSON() async throws {
        try await Self.inProcess { daemon in
            #expect(try await daemon.cli(["ingest", "-"], input: Data(HREventLines.joiners(Self.staff).utf8)).code == 0)
            let identities = Self.json(try await daemon.cli(["identities", "--json"]).stdout) as? [[String: Any]]
            #expect(identities?.count == 5)
            #expect(identities.map { Set($0[0].keys).isSuperset(of: ["id", "externalId", "userName", "email", "status", "groups", "sources"]) } == true)
            let agents = Self.json(try await daemon.cli(["agents", "--json"]).stdout) as? [[String: Any]]
            #expect(agents?.first?["status"] as? String == "active")
            #expect(agents?.first?["sponsor"] as? String == "jdoe")
            let plan = Self.json(try await daemon.cli(["plan", "--json"]).stdout) as? [String: Any]
            #expect((plan?["steps"] as? [Any])?.isEmpty == true)
            #expect(plan?["held"] as? Bool == false)
            let status = try await daemon.cli(["status", "--json"])
            #expect(status.code == 0)
            let object = Self.json(status.stdout) as? [String: Any]
            #expect((object?["identities"] as? [String: Int])?["active"] == 5)
            #expect(((object?["sources"] as? [String: Any])?["ldap"] as? [String: Any])?["state"] as? String == "disabled")

            let leaver = HREventLines.event("evt-leave-jdoe", "leaver", user: "jdoe", employeeNumber: 1001) + "\n"
            #expect(try await daemon.cli(["ingest", "-"], input: Data(leaver.utf8)).code == 0)
            let quarantined = Self.json(try await daemon.cli(["agents", "--json"]).stdout) as? [[String: Any]]
            #expect(quarantined?.first?["status"] as? String == "quarantined")
            #expect(try await daemon.cli(["identities", "reactivate", "jdoe"]).code == 0)
            #expect((Self.json(try await daemon.cli(["agents", "--json"]).stdout) as? [[String: Any]])?.first?["status"] as? String == "active")
            #expect(try await daemon.cli(["identities", "reactivate", "nobody"]).code == 1)
        }
    }

    @Test func metricsShowGrantsIdentitiesAndRevocationLatency() async throws {
        let daemon = try await Self.start()
        defer { daemon.stop() }
        let leaver = HREventLines.event("evt-leave-bob", "leaver", user: "bob", employeeNumber: 1003, occurredAt: Date().addingTimeInterval(1)) + "\n"
        let ingest = try await daemon.cli(["ingest", "-"], input: Data((HREventLines.joiners(Self.staff) + leaver).utf8))
        #expect(ingest.code == 0)
        #expect(ingest.stdout.contains("line 6: applied evt-leave-bob (revoked 1)"), "\(ingest.stdout)")
        let (status, text) = try await daemon.get("/metrics")
        #expect(status == 200)
        #expect(text.contains("tether_grants 4.0"))
        #expect(text.contains("tether_identities{status=\"active\"} 4.0"))
        #expect(text.contains("tether_identities{status=\"terminated\"} 1.0"))
        #expect(text.contains("tether_revocations_total 1"))
        #expect(text.contains("tether_revocation_latency_seconds_count 1"))
        #expect(text.contains("tether_held_plans 0.0"))
    }

    @Test func anUnreachableDaemonIsExitOneNamingTheSocket() async throws {
        let missing = FileManager.default.temporaryDirectory.appendingPathComponent("no-daemon-\(UUID().uuidString.prefix(8)).sock").path
        let result = try await DaemonProcess.run(["status", "--socket", missing])
        #expect(result.code == 1)
        #expect(result.stderr.contains(missing))
    }
}
