import Foundation
import Testing
import TetherCore
import TetherStore

/// A downstream target that fails while people leave, move and join — first answering 500, then
/// answering too late, then down — against the real daemon (SPEC §6, §12): the store and
/// `/v1/check` enforce each revocation at once, every change waits in the outbox, `tether status`
/// and `/metrics` show the backlog, and once the target is back it receives exactly what the
/// outbox held, revocations before the grants committed after them, each under the key it was
/// first tried with.
@Suite(.serialized) struct TargetOutageTests {
    static let config = """
        sources:
          hr: { secretFiles: [hr.secret] }
        check: { tokenFile: check.token }
        \(DaemonProcess.supportCopilot)
          - id: sales-crm
            when: { attribute: { name: department, in: [Sales] } }
            grant: [ { agent: support-copilot, scopes: [crm:read], resource: "crm:{userName}" } ]
        """

    @Test func everyChangeWaitsInTheOutboxAndArrivesOnceTheTargetIsBack() async throws {
        let target = RecordingTarget(secret: "gateway-secret")
        // The target goes down and comes back on its port: a port no other server can be given meanwhile.
        try await target.start(port: try DaemonProcess.portOutsideEphemeralRange())
        let port = try #require(URL(string: target.url)?.port)
        let folder = try DaemonProcess.folder(files: [
            "gateway.secret": "gateway-secret", "hr.secret": "hr-secret", "check.token": "check-token",
        ])
        let daemon = try DaemonProcess(
            config: Self.config + """

                targets:
                  - { id: gw, type: http, url: "\(target.url)", secretFile: gateway.secret, timeout: 2s, maxBackoff: 2s }
                """,
            folder: folder)
        defer { daemon.stop() }
        try await daemon.waitUntilReady()

        let people = (1...7).map { ("p\($0)", 1001 + $0) }
        for (user, number) in [("jdoe", 1001)] + people.prefix(6) {
            #expect(try await daemon.postHR(HREventLines.event("join-\(user)", "joiner", user: user, employeeNumber: number)).status == 200)
        }
        #expect(
            await eventually(timeout: 30) {
                guard target.held.count == 7 else { return false }
                return (try? await backlog(daemon)) == Backlog(pending: 0, metric: 0)
            },
            "the joiners' grants reached the target\n\(daemon.log())")

        // 500s: two leavers. The check denies at once; the target keeps their grants.
        target.fail(.status500)
        for (user, number) in people.prefix(2) {
            #expect(try await daemon.postHR(HREventLines.event("leave-\(user)", "leaver", user: user, employeeNumber: number)).status == 200)
            #expect(try await daemon.check(user) == "deny", "the store enforces the revocation before the target")
        }
        #expect(await eventually(timeout: 30) { target.refused.count >= 2 }, "retried while the target answers 500")
        #expect(target.held.count == 7)
        #expect(try await backlog(daemon) == Backlog(pending: 2, metric: 2))
        #expect(try await lastError(daemon)?.contains("HTTP 500") == true, "status says why the changes wait")

        // Too late: a mover from Support to Sales (a revocation and a grant).
        target.fail(.hang(.seconds(5)))
        let refusedBefore = target.refused.count
        #expect(try await daemon.postHR(HREventLines.event("move-p3", "mover", user: "p3", employeeNumber: 1004, department: "Sales")).status == 200)
        #expect(await eventually(timeout: 30) { target.refused.count > refusedBefore }, "tried while the target hangs")

        // Down: a leaver and a joiner, and an attempt refused since (status says why).
        await target.stop()
        #expect(try await daemon.postHR(HREventLines.event("leave-p4", "leaver", user: "p4", employeeNumber: 1005)).status == 200)
        #expect(try await daemon.postHR(HREventLines.event("join-p7", "joiner", user: "p7", employeeNumber: 1008)).status == 200)
        let refused = await eventually(timeout: 30) { (try? await lastError(daemon))?.contains("cannot connect") == true }
        let said = try await lastError(daemon)
        #expect(refused, "the last error: \(said ?? "none")")

        let store = try SQLiteStateStore(path: folder.appendingPathComponent("state/tether.db").path)
        let waiting = try await store.outbox(target: "gw")
        let grant = { (user: String, scope: String, resource: String) in
            Grant(subject: user, agent: "support-copilot", scope: scope, resource: resource).id
        }
        let tickets = { (user: String) in grant(user, "tickets:read", "zendesk:queue/Support") }
        #expect(
            Set(waiting.map { "\($0.operation) \($0.grantID)" })
                == Set(["p1", "p2", "p3", "p4"].map { "delete \(tickets($0))" } + [
                    "put \(grant("p3", "crm:read", "crm:p3"))", "put \(tickets("p7"))",
                ]),
            "\(waiting)")
        #expect(try await backlog(daemon) == Backlog(pending: 6, metric: 6))
        let status = try #require(OperatorCLITests.json(try await daemon.cli(["status", "--json"]).stdout) as? [String: Any])
        let gw = try #require((status["targets"] as? [String: Any])?["gw"] as? [String: Any], "\(status)")
        #expect((gw["oldestSeconds"] as? Double ?? -1) >= 0, "\(gw)")

        // Back on its port: everything the outbox held arrives, and nothing else.
        target.fail(nil)
        let appliedBefore = target.changes.count
        try await target.start(port: port)
        #expect(await eventually(timeout: 30) { (try? await backlog(daemon))?.pending == 0 }, "\(daemon.log())")
        let delivered = Array(target.changes.dropFirst(appliedBefore))
        // At least once: an answer lost on the way back means the same change again, same key.
        #expect(Set(delivered.compactMap(\.outboxID)) == Set(waiting.map(\.id)), "each waiting row and nothing else: \(delivered)")
        #expect(delivered.allSatisfy { $0.signatureValid })
        for change in delivered where change.operation == .put {
            let sentBefore = delivered.prefix { $0.idempotencyKey != change.idempotencyKey }
            let olderRevocations = waiting.filter { $0.operation == .delete && $0.id < (change.outboxID ?? 0) }
            #expect(
                olderRevocations.allSatisfy { row in sentBefore.contains { $0.outboxID == row.id } },
                "a grant went out before a revocation committed earlier: \(delivered)")
        }
        #expect(Set(target.refused.map(\.idempotencyKey)).isSubset(of: Set(delivered.map(\.idempotencyKey))), "retries keep their key")
        let expected = ["jdoe", "p5", "p6", "p7"].map { "\($0) support-copilot tickets:read zendesk:queue/Support" } + [
            "p3 support-copilot crm:read crm:p3"
        ]
        #expect(Set(target.held.values) == Set(expected))
        #expect(try await backlog(daemon) == Backlog(pending: 0, metric: 0))
        #expect(try await lastError(daemon) == nil)
        #expect(daemon.log().contains("target available again"))
        await target.stop()
    }

    struct Backlog: Equatable {
        var pending: Int
        var metric: Double
    }

    /// The target's pending count as `tether status --json` and `/metrics` give it.
    private func backlog(_ daemon: DaemonProcess) async throws -> Backlog {
        let status = try await daemon.cli(["status", "--json"])
        let object = try #require(OperatorCLITests.json(status.stdout) as? [String: Any], "\(status.stdout) \(status.stderr)")
        let gw = try #require((object["targets"] as? [String: Any])?["gw"] as? [String: Any], "\(status.stdout)")
        return Backlog(pending: try #require(gw["pending"] as? Int), metric: try await metric(daemon, "tether_outbox_pending"))
    }

    /// Why the latest delivery to the target failed, as `tether status --json` gives it.
    private func lastError(_ daemon: DaemonProcess) async throws -> String? {
        let status = try await daemon.cli(["status", "--json"])
        let object = try #require(OperatorCLITests.json(status.stdout) as? [String: Any], "\(status.stdout) \(status.stderr)")
        return ((object["targets"] as? [String: Any])?["gw"] as? [String: Any])?["lastError"] as? String
    }

    /// The value of `name{target="gw"}` in `/metrics`.
    private func metric(_ daemon: DaemonProcess, _ name: String) async throws -> Double {
        let (_, text) = try await daemon.get("/metrics")
        let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("\(name){target=\"gw\"} ") }, "\(name) in\n\(text)")
        return try #require(Double(line.split(separator: " ").last ?? ""))
    }
}
