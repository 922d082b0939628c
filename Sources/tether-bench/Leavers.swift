import ArgumentParser
import Foundation
import Histogram
import TetherCore

/// HR leaver latency: signed SPEC §8 leavers through `POST /hooks/hr` of a running
/// `tether serve`, one at a time, each timed from the first byte sent to the last byte of
/// the 200 that says the revocations committed.
struct Leavers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "leavers", abstract: "HR leaver webhook latency against a running tether serve.")

    @Option(help: "The folder scripts/gen-workload wrote (hr.secret, workload.json).") var workload: String
    @Option(help: "The HTTP port tether serve listens on (127.0.0.1).") var port: UInt16
    @Option(help: "How many leavers to time.") var count = 1000
    @Option(help: "Leavers sent first and not timed.") var warmup = 20
    @Option(name: .customLong("run"), help: "Distinguishes this run's event ids from an earlier run's.") var runLabel = "1"

    func run() async throws {
        let summary = try WorkloadSummary.read(workload)
        let signer = TetherSignature(secret: try SecretFile.read(workload + "/hr.secret"))
        // Team members only: sponsors and managers stay, so each leaver revokes one person's grants.
        let candidates = Array(summary.teams..<summary.people)
        let total = warmup + count
        guard candidates.count >= total else { throw ValidationError("the workload has only \(candidates.count) team members") }
        let stride = candidates.count / total
        let client = try LoopbackHTTP(port: port)
        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        var revoked = 0
        for index in 0..<total {
            let person = candidates[index * stride]
            let name = String(format: "u%06d", person)
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
            var watch = Stopwatch()
            let response = try client.post("/hooks/hr", headers: [("Tether-Signature", signature)], body: body)
            let elapsed = watch.lap()
            guard response.status == 200, response.body.contains("\"applied\"") else {
                throw ValidationError("leaver \(name): \(response.status) \(response.body)")
            }
            guard index >= warmup else { continue }
            if let range = response.body.range(of: "\"revoked\":") {
                revoked += Int(response.body[range.upperBound...].prefix { $0.isNumber }) ?? 0
            }
            let micros = UInt64(elapsed.components.seconds) * 1_000_000 + UInt64(elapsed.components.attoseconds / 1_000_000_000_000)
            _ = histogram.record(micros)
        }
        func ms(_ micros: UInt64) -> String { String(format: "%.2f", Double(micros) / 1000) }
        Report.line("leaver.count", "\(histogram.totalCount)", note: "\(warmup) warm-up leavers not counted")
        Report.line("leaver.grants_revoked", "\(revoked)", note: "\(String(format: "%.1f", Double(revoked) / Double(count))) a leaver")
        Report.line("leaver.p50_ms", ms(histogram.valueAtPercentile(50)), note: "budget ≤ 5 ms")
        Report.line("leaver.p90_ms", ms(histogram.valueAtPercentile(90)))
        Report.line("leaver.p99_ms", ms(histogram.valueAtPercentile(99)), note: "budget ≤ 25 ms")
        Report.line("leaver.max_ms", ms(histogram.max))
    }
}
