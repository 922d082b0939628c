import Foundation
import Testing
import TetherCore

/// A target's drift past the safety gates, held and approved by an operator through the CLI
/// of the running daemon (SPEC §6, §10).
@Suite(.serialized) struct HeldDriftTests {
    @Test func heldDriftIsListedAndAppliedByTetherApprove() async throws {
        let target = RecordingTarget(secret: "gateway-secret")
        try await target.start()
        let folder = try DaemonProcess.folder(files: ["gateway.secret": "gateway-secret"])
        let config = """
            agents:
              - { id: support-copilot, kind: delegated, sponsor: jdoe }
            policies: []
            safety: { maxRevocationsPerRun: 1, maxRevocationRatio: 1.0, minGrantsForRatio: 1000 }
            targets:
              - { id: gw, type: http, url: "\(target.url)", secretFile: gateway.secret, orphans: revoke }
            """
        try await InProcessDaemon.run(config: config, folder: folder) { daemon in
            // Three grants on the target that nothing in Tether explains: over the limit of one.
            let orphans = ["eve", "trent", "mallory"].map {
                Grant(subject: $0, agent: "support-copilot", scope: "tickets:read", resource: "zendesk:queue/Sales")
            }
            target.plant(Dictionary(uniqueKeysWithValues: orphans.map {
                ($0.id, "\($0.subject) \($0.agent) \($0.scope) \($0.resource)")
            }))
            #expect(try await daemon.cli(["resync", "--full"]).code == 0)
            let plans = try await daemon.cli(["plans", "--json"])
            let listed = try #require(OperatorCLITests.json(plans.stdout) as? [[String: Any]], "\(plans.stdout) \(plans.stderr)")
            let held = try #require(listed.first { $0["scope"] as? String == "target:gw" }, "\(plans.stdout)\n\(daemon.log())")
            let id = try #require(held["id"] as? String)
            #expect((held["steps"] as? [Any])?.count == 3)
            #expect(target.held.count == 3, "nothing revoked while held")

            let approved = try await daemon.cli(["approve", id])
            #expect(approved.code == 0, "\(approved.stdout) \(approved.stderr)")
            #expect(await eventually(timeout: 30) { target.held.isEmpty }, "the orphans were revoked on the target\n\(daemon.log())")
            #expect(target.changes.allSatisfy { $0.operation == .delete && $0.signatureValid })
            #expect(try await daemon.cli(["approve", id]).code != 0, "a plan is approved once")
            let audit = try await daemon.cli(["audit", "--json"])
            #expect(audit.stdout.contains("\"action\":\"plan.approved\""))
        }
        await target.stop()
    }
}
