import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import Testing
import TetherCore
import TetherDaemon
import TetherStore

/// The decision log (SPEC §16) on a daemon in this process: every `/v1/check` answer stored
/// with its caller and revision, drops counted and audited when the queue is full, and the
/// `tether decisions` and `tether explain --decision` commands.
@Suite(.serialized) struct DecisionLogTests {
    static func config(log: String = "") -> String {
        OperatorCLITests.withPolicy + "\ncheck: { tokenFile: check.token\(log.isEmpty ? "" : ", log: { \(log) }") }\n"
    }

    static func folder() throws -> URL {
        try DaemonProcess.folder(files: ["hr.secret": "secret-one", "check.token": "gateway-eu s3cret-eu\nbare-token\n"])
    }

    /// Asks `/v1/check` whether `subject` may read the Support queue; the answer's fields.
    static func check(_ daemon: InProcessDaemon, _ subject: String, token: String = "s3cret-eu") async throws -> [String: Any] {
        let body = #"{"agent":"support-copilot","subject":"\#(subject)","scope":"tickets:read","resource":"zendesk:queue/Support"}"#
        let answer = try await daemon.post("/v1/check", body: body, headers: ["Authorization": "Bearer \(token)"])
        #expect(answer.status == 200, "the check was answered: \(answer.body)")
        return try #require(try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any])
    }

    static func join(_ daemon: InProcessDaemon, _ users: [(String, Int)]) async throws {
        let result = try await daemon.cli(["ingest", "-"], input: Data(HREventLines.joiners(users).utf8))
        #expect(result.code == 0, "\(result.stdout)\(result.stderr)")
    }

    @Test func everyAnswerUnderConcurrentLoadIsStoredWithItsCallerAndRevision() async throws {
        try await InProcessDaemon.run(config: Self.config(), folder: try Self.folder()) { daemon in
            try await Self.join(daemon, [("jdoe", 1001), ("alice", 1002)])
            let subjects = ["jdoe", "alice", "mallory"]
            struct Answer: Sendable {
                var subject: String
                var decision: String?
                var allowed: Bool?
                var grant: String?
                var policy: String?
            }
            let answers = try await withThrowingTaskGroup(of: Answer.self) { group in
                for index in 0..<600 {
                    let subject = subjects[index % 3]
                    group.addTask {
                        let answer = try await Self.check(daemon, subject, token: index % 2 == 0 ? "s3cret-eu" : "bare-token")
                        return Answer(
                            subject: subject, decision: answer["decision"] as? String, allowed: answer["allowed"] as? Bool,
                            grant: answer["grant"] as? String, policy: answer["policy"] as? String)
                    }
                }
                return try await group.reduce(into: [Answer]()) { $0.append($1) }
            }
            #expect(answers.count == 600)
            let log = daemon.services.decisionLog.store
            #expect(try await eventually { try await log.count() == 600 }, "every answer is stored while the queue has room")
            let revision = try await daemon.store.lastAuditSeq()
            let policySet = await daemon.services.engine.configuration.policySet.hash
            let stored = try await log.decisions(DecisionQuery())
            let byID = Dictionary(uniqueKeysWithValues: stored.map { ($0.id, $0) })
            for answer in answers {
                let id = try #require(answer.decision)
                let decision = try #require(byID[id], "decision \(id) is stored")
                #expect(decision.subject == answer.subject && decision.allowed == answer.allowed)
                #expect(decision.grant == answer.grant && decision.policy == answer.policy)
                #expect(decision.agent == "support-copilot" && decision.scope == "tickets:read" && decision.resource == "zendesk:queue/Support")
                #expect(decision.revision == revision, "the index reflects every commit made before the checks")
                #expect(decision.policySet == policySet)
                #expect(decision.caller == "gateway-eu" || decision.caller == "token-2")
            }
            #expect(stored.filter { $0.caller == "gateway-eu" }.count == 300)
            #expect(stored.filter { $0.allowed }.count == 400 && stored.filter { $0.subject == "mallory" }.allSatisfy { !$0.allowed })
            #expect(try await daemon.get("/metrics").1.contains("tether_decisions_written_total 600"))
        }
    }

    @Test func aFullQueueDropsDecisionsCountsAndAuditsThemAndNeverDelaysTheCheck() async throws {
        let hold = WriterHold()
        try await InProcessDaemon.run(
            config: Self.config(log: "queueSize: 4"), folder: try Self.folder(), beforeDecisionWrite: { _ in await hold.wait() }
        ) { daemon in
            // A failed expectation must not leave the writer held through the shutdown.
            defer { hold.release() }
            try await Self.join(daemon, [("jdoe", 1001)])
            _ = try await Self.check(daemon, "jdoe")
            await hold.untilEntered(1)  // the writer took the first decision and is held
            // The writer is held: four decisions fill the queue, six more are dropped, and every
            // check is still answered at once.
            for _ in 0..<10 { #expect(try await Self.check(daemon, "jdoe")["allowed"] as? Bool == true) }
            #expect(daemon.services.decisionLog.queue.count == 4)
            #expect(daemon.services.decisionLog.queue.dropped == 6)
            let metrics = try await daemon.get("/metrics").1
            #expect(metrics.contains("tether_decisions_dropped_total 6"))

            await daemon.services.decisionLog.reportDrops()
            let records = try await daemon.store.auditRecords(AuditQuery()).filter { $0.action == "decisions.dropped" }
            #expect(records.count == 1)
            #expect(records.first?["count"] == "6" && records.first?["actor"] == "check")
            await daemon.services.decisionLog.reportDrops()
            #expect(try await daemon.store.auditRecords(AuditQuery()).filter { $0.action == "decisions.dropped" }.count == 1,
                    "an interval without drops adds no record")

            hold.release()
            let log = daemon.services.decisionLog.store
            #expect(try await eventually { try await log.count() == 5 }, "the held decision and the four queued are stored")
            #expect(try await daemon.store.verifyAuditChain() == .intact(records: try await daemon.store.lastAuditSeq()))
        }
    }

    @Test func decisionsCommandFiltersAndPrintsSortedJSONLines() async throws {
        try await InProcessDaemon.run(config: Self.config(), folder: try Self.folder()) { daemon in
            try await Self.join(daemon, [("jdoe", 1001), ("alice", 1002)])
            let before = Date()
            var ids: [String: [String]] = [:]
            for subject in ["jdoe", "alice", "mallory", "jdoe"] {
                ids[subject, default: []].append(try #require(try await Self.check(daemon, subject)["decision"] as? String))
            }
            let log = daemon.services.decisionLog.store
            #expect(try await eventually { try await log.count() == 4 })

            let jdoe = try await daemon.cli(["decisions", "--subject", "jdoe", "--json"])
            #expect(jdoe.code == 0, "\(jdoe.stderr)")
            let lines = jdoe.stdout.split(separator: "\n").map(String.init)
            #expect(lines.count == 2)
            let objects = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            #expect(objects.compactMap { $0["decision"] as? String } == ids["jdoe"])
            for (line, object) in zip(lines, objects) {
                let sorted = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
                #expect(line == String(decoding: sorted, as: UTF8.self), "keys sorted, no white space")
                #expect(Set(object.keys) == [
                    "agent", "allowed", "caller", "decision", "grant", "policy", "policySet", "resource", "revision", "scope",
                    "subject", "time",
                ])
            }
            let denied = try await daemon.cli(["decisions", "--denied", "--json"])
            #expect(denied.stdout.split(separator: "\n").count == 1 && denied.stdout.contains(ids["mallory"]![0]))
            let byAgent = try await daemon.cli(["decisions", "--agent", "support-copilot", "--since", Timestamp.string(before), "--limit", "3"])
            #expect(byAgent.code == 0 && byAgent.stdout.split(separator: "\n").count == 4, "a header and three rows:\n\(byAgent.stdout)")
            let none = try await daemon.cli(["decisions", "--agent", "other-agent", "--json"])
            #expect(none.code == 0 && none.stdout.isEmpty)
            let future = try await daemon.cli(["decisions", "--until", Timestamp.string(before), "--json"])
            #expect(future.code == 0 && future.stdout.isEmpty)
            let bad = try await daemon.cli(["decisions", "--since", "yesterday"])
            #expect(bad.code == 2 && bad.stderr.contains("--since yesterday"))
        }
    }

    @Test func explainDecisionShowsTheDecisionAndTheLineageOfItsGrant() async throws {
        try await InProcessDaemon.run(config: Self.config(), folder: try Self.folder()) { daemon in
            try await Self.join(daemon, [("jdoe", 1001)])
            let allow = try await Self.check(daemon, "jdoe")
            let deny = try await Self.check(daemon, "mallory")
            let log = daemon.services.decisionLog.store
            #expect(try await eventually { try await log.count() == 2 })

            let allowID = try #require(allow["decision"] as? String)
            let explained = try await daemon.cli(["explain", "--decision", allowID])
            #expect(explained.code == 0, "\(explained.stdout)\(explained.stderr)")
            #expect(explained.stdout.contains("decision:   \(allowID)") && explained.stdout.contains("for gateway-eu"))
            #expect(explained.stdout.contains("grant:      \(allow["grant"] as! String)"))
            #expect(explained.stdout.contains("policy:     support-tickets"))
            #expect(explained.stdout.contains("grant.granted"), "the grant's audit records are listed")

            let denyID = try #require(deny["decision"] as? String)
            let denied = try await daemon.cli(["explain", "--decision", denyID])
            #expect(denied.code == 1 && denied.stdout.contains("denied") && !denied.stdout.contains("grant:"))

            let unknown = try await daemon.cli(["explain", "--decision", "d_" + String(repeating: "0", count: 32)])
            #expect(unknown.code == 1 && unknown.stderr.contains("is not in the decision log"))
            let both = try await daemon.cli(["explain", "--decision", allowID, "jdoe", "support-copilot", "tickets:read", "x"])
            #expect(both.code != 0)
        }
    }
}

/// Holds the decision log's writer before each batch until released.
final class WriterHold: Sendable {
    private struct State {
        var released = false
        var entered = 0
        var held: [CheckedContinuation<Void, Never>] = []
        /// Tests waiting for a number of batches to reach the hold.
        var watchers: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }

    private let state = Mutex(State())

    /// How many batches reached the hold.
    var entered: Int { state.withLock { $0.entered } }

    /// Called by the writer: holds it until ``release()``.
    func wait() async {
        await withCheckedContinuation { continuation in
            let (resume, watchers) = state.withLock { state in
                state.entered += 1
                let reached = state.watchers.filter { $0.count <= state.entered }
                state.watchers.removeAll { $0.count <= state.entered }
                if state.released { return (true, reached) }
                state.held.append(continuation)
                return (false, reached)
            }
            for watcher in watchers { watcher.continuation.resume() }
            if resume { continuation.resume() }
        }
    }

    /// Returns once `count` batches have reached the hold: waits on the outcome, however long
    /// a loaded machine takes to get there.
    func untilEntered(_ count: Int) async {
        await withCheckedContinuation { continuation in
            let reached = state.withLock { state in
                guard state.entered < count else { return true }
                state.watchers.append((count, continuation))
                return false
            }
            if reached { continuation.resume() }
        }
    }

    func release() {
        let held = state.withLock { state in
            state.released = true
            defer { state.held = [] }
            return state.held
        }
        for continuation in held { continuation.resume() }
    }
}
