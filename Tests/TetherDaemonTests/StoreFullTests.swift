import Foundation
import Testing
import TetherStore

/// The store's disk full (SQLite's `max_page_count` on the daemon's writer): writes answer 503,
/// nothing of them is applied, and the daemon serves on and takes them once there is room.
@Suite(.serialized) struct StoreFullTests {
    static let config = """
        sources:
          hr: { secretFiles: [hr.secret] }
          scim: { tokenFile: scim.token }
        check: { tokenFile: check.token }
        \(DaemonProcess.supportCopilot)
        """

    @Test func writesAnswer503AndApplyNothingUntilThereIsRoom() async throws {
        let folder = try DaemonProcess.folder(
            files: ["hr.secret": "hr-secret-full", "scim.token": "scim-token-full", "check.token": "check-token-full"])
        let daemon = try DaemonProcess(config: Self.config, folder: folder)
        defer { daemon.stop() }
        try await daemon.waitUntilReady()
        let jdoe = HREventLines.event("evt-jdoe", "joiner", user: "jdoe", employeeNumber: 1001)
        #expect(try await daemon.postHR(jdoe).status == 200)
        #expect(try await daemon.check("jdoe") == "allow")

        // The cap stops the file from growing; each write below carries a 200 KB title, more
        // than the free room left in the file's pages, so it needs pages the "disk" lacks.
        try await SystemdLifecycleTests.adminPost(daemon, "/v1/debug/store-full?on=true")
        let alice = Self.padded(HREventLines.event("evt-alice", "joiner", user: "alice", employeeNumber: 1002))
        let refused = try await daemon.postHR(alice)
        #expect(refused.status == 503, "\(refused.body)")
        let leaver = Self.padded(HREventLines.event("evt-jdoe-leaves", "leaver", user: "jdoe", employeeNumber: 1001))
        #expect(try await daemon.postHR(leaver).status == 503)
        let bob = #"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"bob","externalId":"E1003","title":"\#(Self.padding)"}"#
        let scim = try await daemon.postSCIM(bob)
        #expect(scim.status == 503, "\(scim.body)")
        #expect(scim.body.contains("urn:ietf:params:scim:api:messages:2.0:Error"))
        let carol = Self.padded(HREventLines.event("evt-carol", "joiner", user: "carol", employeeNumber: 1004))
        #expect(try await daemon.cli(["ingest", "-"], input: Data((carol + "\n").utf8)).code != 0)

        // Nothing of the refused writes is in the store, and what was there still holds.
        let store = try SQLiteStateStore(path: folder.appendingPathComponent("state/tether.db").path)
        for user in ["alice", "bob", "carol"] {
            #expect(try await store.identity(userName: user) == nil, "\(user) was half-applied")
        }
        #expect(try await store.identity(userName: "jdoe")?.status == .active)
        #expect(try await daemon.cli(["audit", "verify"]).code == 0)
        // The daemon serves on: health, checks and reads answer from the state it has.
        #expect(try await daemon.get("/healthz").0 == 200)
        #expect(try await daemon.check("jdoe") == "allow")
        #expect(try await daemon.cli(["grants", "--json"]).stdout.contains("jdoe"))
        #expect(daemon.log().contains("database or disk is full"), "the log names the cause")

        // Room again: the same deliveries are taken as new.
        try await SystemdLifecycleTests.adminPost(daemon, "/v1/debug/store-full?on=false")
        let retried = try await daemon.postHR(alice)
        #expect(retried.status == 200, "\(retried.body)")
        #expect(try await daemon.check("alice") == "allow")
        #expect(try await daemon.postHR(leaver).status == 200)
        #expect(try await daemon.check("jdoe") == "deny")
        #expect(try await daemon.check("alice") == "deny", "jdoe sponsored the copilot: it is quarantined")
        #expect(try await daemon.postSCIM(bob).status == 201)
        let plan = try await daemon.cli(["plan", "--json"])
        #expect((OperatorCLITests.json(plan.stdout) as? [String: Any])?["steps"] as? [Any] != nil)
        #expect(((OperatorCLITests.json(plan.stdout) as? [String: Any])?["steps"] as? [Any])?.isEmpty == true)
        #expect(try await daemon.cli(["audit", "verify"]).code == 0)
    }

    static let padding = String(repeating: "x", count: 200_000)

    /// `event` with a 200 KB `user.title`.
    static func padded(_ event: String) -> String {
        var body = try! JSONSerialization.jsonObject(with: Data(event.utf8)) as! [String: Any]
        var user = body["user"] as! [String: Any]
        user["title"] = padding
        body["user"] = user
        return String(decoding: try! JSONSerialization.data(withJSONObject: body, options: [.sortedKeys]), as: UTF8.self)
    }
}
