import ArgumentParser
import Foundation
import Histogram
import TetherCore

/// HR leaver latency: signed SPEC §8 leavers through `POST /hooks/hr` of a running
/// `tether serve`, one at a time, each timed from the first byte sent to the last byte of
/// the 200 that says the revocations committed. With `--follower-port`, each leaver's
/// revision is then asked of another node (`"atLeast"`): how long after the answer that node's
/// index reflects it (SPEC §14's follower lag).
struct Leavers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "leavers", abstract: "HR leaver webhook latency against a running tether serve.")

    @Option(help: "The folder scripts/gen-workload wrote (hr.secret, workload.json).") var workload: String
    @Option(help: "The HTTP port tether serve listens on (127.0.0.1).") var port: UInt16
    @Option(help: "How many leavers to time.") var count = 1000
    @Option(help: "Leavers sent first and not timed.") var warmup = 20
    @Option(name: .customLong("run"), help: "Distinguishes this run's event ids from an earlier run's.") var runLabel = "1"
    @Option(help: "Skips this many people of each stride, so runs on one store pick different leavers.") var offset = 0
    @Option(help: "The prefix of the figures' names.") var label = "leaver"
    @Option(help: "Another node's HTTP port: after each leaver, a check there waits for its revision.") var followerPort: UInt16?

    func run() async throws {
        let summary = try WorkloadSummary.read(workload)
        let hr = try HRLeaver(workload: workload, runLabel: runLabel)
        // Team members only: sponsors and managers stay, so each leaver revokes one person's grants.
        let candidates = Array(summary.teams..<summary.people)
        let total = warmup + count
        guard candidates.count >= total else { throw ValidationError("the workload has only \(candidates.count) team members") }
        let stride = candidates.count / total
        guard offset < stride else { throw ValidationError("--offset must be below \(stride) for \(total) leavers") }
        let client = try LoopbackHTTP(port: port)
        let follower = try followerPort.map { try LoopbackHTTP(port: $0) }
        let checkToken = try String(decoding: SecretFile.read(workload + "/check.token"), as: UTF8.self)
        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        var lag = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        var revoked = 0
        var lagTimeouts = 0
        for index in 0..<total {
            let person = candidates[index * stride + offset]
            var watch = Stopwatch()
            let response = try hr.send(person: person, to: client)
            let elapsed = watch.lap()
            guard response.status == 200, response.body.contains("\"applied\"") else {
                throw ValidationError("leaver \(HRLeaver.name(person)): \(response.status) \(response.body)")
            }
            if let follower, let revision = Self.number(after: "\"revision\":", in: response.body) {
                let question = Array(
                    #"{"subject":"\#(HRLeaver.name(person))","agent":"agent-00","scope":"docs:read","resource":"wiki:Dept 00","atLeast":\#(revision)}"#.utf8)
                watch = Stopwatch()
                let answer = try follower.post("/v1/check", headers: [("Authorization", "Bearer \(checkToken)")], body: question)
                let waited = watch.lap()
                if index >= warmup {
                    if answer.status == 200 { _ = lag.record(Self.micros(waited)) } else { lagTimeouts += 1 }
                }
            }
            guard index >= warmup else { continue }
            revoked += Self.number(after: "\"revoked\":", in: response.body) ?? 0
            _ = histogram.record(Self.micros(elapsed))
        }
        func ms(_ micros: UInt64) -> String { String(format: "%.2f", Double(micros) / 1000) }
        Report.line("\(label).count", "\(histogram.totalCount)", note: "\(warmup) warm-up leavers not counted")
        Report.line("\(label).grants_revoked", "\(revoked)", note: "\(String(format: "%.1f", Double(revoked) / Double(count))) a leaver")
        Report.line("\(label).p50_ms", ms(histogram.valueAtPercentile(50)), note: "budget ≤ 5 ms")
        Report.line("\(label).p90_ms", ms(histogram.valueAtPercentile(90)))
        Report.line("\(label).p99_ms", ms(histogram.valueAtPercentile(99)), note: "budget ≤ 25 ms")
        Report.line("\(label).max_ms", ms(histogram.max))
        if followerPort != nil {
            let note = "from the leader's 200 to the other node's check answered at that revision"
            Report.line("\(label).follower_lag_p50_ms", ms(lag.valueAtPercentile(50)), note: note)
            Report.line("\(label).follower_lag_p99_ms", ms(lag.valueAtPercentile(99)), note: "budget ≤ 100 ms")
            Report.line("\(label).follower_lag_max_ms", ms(lag.max))
            Report.line("\(label).follower_lag_past_max_wait", "\(lagTimeouts)", note: "checks answered 503: not reached within check.maxWait")
        }
    }

    static func micros(_ elapsed: Duration) -> UInt64 {
        UInt64(elapsed.components.seconds) * 1_000_000 + UInt64(elapsed.components.attoseconds / 1_000_000_000_000)
    }

    /// The integer after `key` in a JSON answer.
    static func number(after key: String, in body: String) -> Int? {
        guard let range = body.range(of: key) else { return nil }
        return Int(body[range.upperBound...].prefix { $0.isNumber })
    }
}

/// Signed leaver events for the workload's people, as an HR system sends them (SPEC §8).
struct HRLeaver {
    let signer: TetherSignature
    let runLabel: String

    init(workload: String, runLabel: String) throws {
        signer = TetherSignature(secret: try SecretFile.read(workload + "/hr.secret"))
        self.runLabel = runLabel
    }

    static func name(_ person: Int) -> String { String(format: "u%06d", person) }

    /// Sends the leaver of `person` and returns the answer.
    func send(person: Int, to client: LoopbackHTTP) throws -> LoopbackHTTP.Response {
        let name = Self.name(person)
        let now = Date()
        let body = Array(
            """
            {"id":"bench-leaver-\(runLabel)-\(name)","type":"leaver","occurredAt":"\(Timestamp.string(now))",\
            "user":{"userName":"\(name)","externalId":"\(String(format: "00000000-0000-4000-8000-%012d", person))",\
            "active":false,"emails":[{"value":"\(name)@example.com","primary":true}],\
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"employeeNumber":"\(100000 + person)"}}}
            """.utf8)
        let t = TetherSignature.timestamp(now)
        let signature = TetherSignature.header(timestamp: t, v1: [signer.v1(timestamp: String(t), body: body)])
        return try client.post("/hooks/hr", headers: [("Tether-Signature", signature)], body: body)
    }
}
