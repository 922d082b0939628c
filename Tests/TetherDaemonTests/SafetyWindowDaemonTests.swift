import Foundation
import Testing

/// The revocation window in the running daemon: HR movers past the budget wait in one held
/// plan that `tether status` and `/metrics` show; an explicit leaver past it applies, flagged.
@Suite(.serialized) struct SafetyWindowDaemonTests {
    static let config = OperatorCLITests.agents.replacingOccurrences(
        of: "safety: { maxRevocationsPerRun: 3, maxRevocationRatio: 1.0, minGrantsForRatio: 1000 }",
        with: "safety: { maxRevocationsPerRun: 2, maxRevocationRatio: 1.0, minGrantsForRatio: 1000, window: 10m }")
        + """

        policies:
          - id: support-tickets
            when: { attribute: { name: department, in: [Support] } }
            grant: [ { agent: support-copilot, scopes: [tickets:read], resource: "zendesk:queue/{department}" } ]
        """

    @Test func moversPastTheWindowAreHeldAndShownUntilApproved() async throws {
        #expect(Self.config.contains("window: 10m"))
        let daemon = try DaemonProcess(config: Self.config, folder: try DaemonProcess.folder(files: ["hr.secret": "secret-one"]))
        defer { daemon.stop() }
        try await daemon.waitUntilReady()
        let staff = OperatorCLITests.staff + [("erin", 1006)]
        #expect(try await daemon.cli(["ingest", "-"], input: Data(HREventLines.joiners(staff).utf8)).code == 0)

        // Four people move out of Support, one event each: one revocation each.
        let movers = staff[1...4].map { user, number in
            HREventLines.event("evt-move-\(user)", "mover", user: user, employeeNumber: number, department: "Legal")
        }.joined(separator: "\n") + "\n"
        let moved = try await daemon.cli(["ingest", "-"], input: Data(movers.utf8))
        #expect(moved.stdout.contains("line 1: applied"), "\(moved.stdout)")
        #expect(moved.stdout.contains("line 2: applied"), "\(moved.stdout)")
        #expect(moved.stdout.contains("line 3: held"), "\(moved.stdout)")
        #expect(moved.stdout.contains("line 4: held"), "\(moved.stdout)")
        let grants = try await daemon.cli(["grants", "--json"]).stdout
        #expect(grants.contains("\"carol\"") && grants.contains("\"dave\""), "held: their grants stay in force")

        let status = OperatorCLITests.json(try await daemon.cli(["status", "--json"]).stdout) as? [String: Any]
        let window = (status?["safetyWindows"] as? [String: Any])?["hr"] as? [String: Any]
        #expect(window?["revocations"] as? Int == 2)
        #expect(window?["heldRevocations"] as? Int == 2)
        #expect(window?["window"] as? String == "10m")
        let held = status?["heldPlans"] as? [[String: Any]]
        #expect(held?.count == 1)
        #expect(held?.first?["scope"] as? String == "window:hr")
        let planID = try #require(held?.first?["id"] as? String)
        #expect(window?["heldPlan"] as? String == planID)
        let text = try await daemon.cli(["status"]).stdout
        #expect(text.contains("revocation windows"), "\(text)")

        // An explicit leaver past the budget applies, and is flagged.
        let leaver = HREventLines.event("evt-leave-erin", "leaver", user: "erin", employeeNumber: 1006) + "\n"
        let left = try await daemon.cli(["ingest", "-"], input: Data(leaver.utf8))
        #expect(left.stdout.contains("applied evt-leave-erin (revoked 1)"), "\(left.stdout)")
        let (code, metrics) = try await daemon.get("/metrics")
        #expect(code == 200)
        #expect(metrics.contains("tether_held_plans 1.0"), "\(metrics)")
        #expect(metrics.contains("tether_safety_window_held_revocations{source=\"hr\"} 2.0"))
        #expect(metrics.contains("tether_safety_window_revocations{source=\"hr\"} 3.0"))
        #expect(metrics.contains("tether_safety_window_exceeded_total{source=\"hr\"} 1"))
        #expect(try await daemon.cli(["audit", "--json"]).stdout.contains("\"action\":\"safety.window_exceeded\""))

        // The operator approves: every held step applies.
        let approved = try await daemon.cli(["approve", planID])
        #expect(approved.code == 0, "\(approved.stdout)\(approved.stderr)")
        let after = try await daemon.cli(["grants", "--json"]).stdout
        #expect(!after.contains("\"carol\"") && !after.contains("\"dave\""), "\(after)")
        #expect(try await daemon.cli(["audit", "verify"]).code == 0)
    }
}
