import Foundation
import PostgresHarness
import TetherCore
import Testing

/// Operator commands on a follower (SPEC §14): with `ha.peerSecretFile` the follower hands
/// them to the leader, signed, under the name of the operator it identified; the leader takes
/// only what a node with the same secret signed, once.
@Suite(.serialized) struct HAOperatorTests {
    /// A command signed as a node would sign it: `v2` over the method, the target, the body and
    /// `"<node> <operator> <nonce>"`.
    static func signedHeaders(
        secret: String, target: String, body: String, node: String = "n9", actor: String = "operator:mallory",
        nonce: String = UUID().uuidString
    ) -> [String: String] {
        let t = TetherSignature.timestamp(Date())
        let code = TetherSignature(secret: Array(secret.utf8)).v2(
            timestamp: String(t), method: "POST", target: target, idempotencyKey: "\(node) \(actor) \(nonce)", body: Array(body.utf8))
        return [
            "Content-Type": "application/json", "Tether-Forwarded-By": node, "Tether-Operator": actor, "Tether-Peer-Nonce": nonce,
            "Tether-Signature": TetherSignature.header(timestamp: t, v2: code),
        ]
    }

    static func exceptions(_ node: DaemonProcess) async throws -> [[String: Any]] {
        let listed = try await node.cli(["exceptions", "--json"])
        return (try? JSONSerialization.jsonObject(with: Data(listed.stdout.utf8)) as? [[String: Any]]) ?? []
    }

    @Test func aFollowerHandsOperatorCommandsToTheLeaderUnderTheOperatorsName() async throws {
        let cluster = try await HATests.start(2, peer: true)
        defer { for node in cluster.nodes { node.stop() } }
        #expect(try await eventually { try await cluster.leader() != nil })
        let leaderIndex = try #require(try await cluster.leader())
        let (leader, follower) = (cluster.nodes[leaderIndex], cluster.nodes[1 - leaderIndex])
        // jdoe sponsors the copilot; alee uses it.
        #expect(try await follower.postHR(HREventLines.event("evt-join-jdoe", "joiner", user: "jdoe", employeeNumber: 1001)).status == 200)
        let joined = try await follower.postHR(HREventLines.event("evt-join-alee", "joiner", user: "alee", employeeNumber: 1003))
        let joinRevision = try #require(HATests.revision(of: joined), "\(joined.body)")
        // The follower answers at that revision once its index has it (503 until then).
        #expect(try await eventually { try await HATests.check(follower, "alee", atLeast: joinRevision).allowed == true })

        // A deny asked of the follower is applied by the leader, recorded under this operator.
        let denied = try await follower.cli([
            "exceptions", "deny", "alee", "support-copilot", "tickets:read", "zendesk:queue/*", "--reason", "on leave",
        ])
        #expect(denied.code == 0, "\(denied.output)")
        #expect(denied.stdout.contains("1 revoked"), "\(denied.stdout)")
        let user = try #require(ProcessInfo.processInfo.environment["USER"] ?? String(validatingCString: getpwuid(geteuid()).pointee.pw_name))
        let rows = try await Self.exceptions(leader)
        #expect(rows.count == 1)
        #expect(rows.first?["approver"] as? String == "operator:\(user)", "\(rows)")
        #expect(leader.log().contains("handed over by another node"), "\(leader.log())")
        #expect(try await eventually { try await HATests.check(follower, "alee", atLeast: nil).allowed == false })
        // A command that fails on the leader fails the same way here.
        let missing = try await follower.cli(["exceptions", "remove", "x_missing"])
        #expect(missing.code != 0 && missing.stderr.contains("no exception has that id"), "\(missing.output)")
        // What only reads is answered by the follower itself.
        #expect(try await follower.cli(["explain", "alee", "support-copilot", "tickets:read", "zendesk:queue/Support"]).code == 1)

        // The leader takes only what a node with the same secret signed, once.
        let target = "/v1/peer/admin/v1/exceptions"
        let body = #"{"effect":"deny","subject":"jdoe","agent":"support-copilot","scope":"tickets:read","resource":"*","reason":"forged"}"#
        let unsigned = try await leader.post(target, body: body, headers: ["Content-Type": "application/json"])
        #expect(unsigned.status == 401, "\(unsigned.body)")
        let wrongSecret = try await leader.post(target, body: body, headers: Self.signedHeaders(secret: String(repeating: "x", count: 40), target: target, body: body))
        #expect(wrongSecret.status == 401 && wrongSecret.body.contains("matches"), "\(wrongSecret.body)")
        var tampered = Self.signedHeaders(secret: HATests.peerSecret, target: target, body: body)
        tampered["Tether-Operator"] = "operator:root-of-all"
        #expect(try await leader.post(target, body: body, headers: tampered).status == 401)
        let anotherBody = body.replacingOccurrences(of: "jdoe", with: "alee")
        #expect(try await leader.post(target, body: anotherBody, headers: Self.signedHeaders(secret: HATests.peerSecret, target: target, body: body)).status == 401)
        #expect(try await Self.exceptions(leader).count == 1)

        let signed = Self.signedHeaders(secret: HATests.peerSecret, target: target, body: body)
        let taken = try await leader.post(target, body: body, headers: signed)
        #expect(taken.status == 200, "\(taken.body)")
        let replayed = try await leader.post(target, body: body, headers: signed)
        #expect(replayed.status == 401 && replayed.body.contains("already"), "\(replayed.body)")
        let after = try await Self.exceptions(leader)
        #expect(after.count == 2)
        #expect(after.contains { $0["approver"] as? String == "operator:mallory" })
        // A follower hands nothing on again: a command signed for it while it follows is refused.
        let signedForFollower = Self.signedHeaders(secret: HATests.peerSecret, target: target, body: anotherBody)
        let atFollower = try await follower.post(target, body: anotherBody, headers: signedForFollower)
        #expect(atFollower.status == 503 && atFollower.body.contains("no longer leads"), "\(atFollower.body)")
        let verified = try await follower.cli(["audit", "verify"])
        #expect(verified.code == 0, "\(verified.output)")
        for node in cluster.nodes {
            #expect(HealthyStartTests.errorLines(node.log()).isEmpty, "\(node.log())")
        }
    }

    @Test func aPeerSecretTooShortIsRefusedAtStart() async throws {
        let cluster = try await PostgresCluster.shared()
        let database = try await cluster.makeDatabase()
        let folder = try DaemonProcess.folder(files: PostgresDaemonTests.secrets.merging(["peer.secret": "short\n"]) { $1 })
        let store = "{ postgres: { url: \"\(cluster.url(database: database))\" } }"
        let daemon = try DaemonProcess(config: HATests.config(node: "s1", peer: true), folder: folder, store: store)
        defer { daemon.stop() }
        #expect(await daemon.waitForExit() == 2)
        #expect(daemon.log().contains("ha.peerSecretFile:") && daemon.log().contains("holds 5 bytes"), "\(daemon.log())")
        #expect(!daemon.log().contains("short"), "\(daemon.log())")
    }
}
