import ArgumentParser
import Foundation
import Histogram
import TetherCore

/// LDAP change → revocation committed: people deleted from the directory one at a time while
/// a `tether serve` follows it by syncrepl; each deletion is timed from the moment its LDIF
/// is handed to `ldapmodify` to the first `POST /v1/check` that answers the person's grant
/// is gone. The check index changes only after the revocation's transaction has committed,
/// so that answer is the commit seen from outside.
struct Syncrepl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "syncrepl",
        abstract: "LDAP deletion → revocation committed, against a tether serve that follows slapd by syncrepl.")

    @Option(help: "The folder scripts/gen-workload wrote (workload.json, check.token, ldap.password).") var workload: String
    @Option(help: "The HTTP port tether serve listens on (127.0.0.1).") var port: UInt16
    @Option(help: "The slapd the daemon follows.") var ldapURL: String
    @Option(help: "How many deletions to time.") var count = 300
    @Option(help: "Deletions made first and not timed.") var warmup = 5
    @Option(help: "How often the check is asked while waiting, in microseconds.") var pollMicroseconds: UInt32 = 1000
    @Option(help: "How long one deletion may take before the run fails, in seconds.") var limitSeconds = 30.0

    func run() async throws {
        let summary = try WorkloadSummary.read(workload)
        let token = String(decoding: try SecretFile.read(workload + "/check.token"), as: UTF8.self)
        let client = try LoopbackHTTP(port: port)
        let writer = try LDIFWriter(url: ldapURL, passwordFile: workload + "/ldap.password")
        defer { writer.finish() }

        // Team members taken from the end of the directory with a stride, so they are spread
        // over teams and departments; whoever is not allowed the probed grant now (contractors,
        // the HR leavers of an earlier step) is passed over.
        let total = warmup + count
        let candidates = Array((summary.teams..<summary.people).reversed())
        let stride = max(1, candidates.count / (total * 2))
        var histogram = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)
        var polls = 0
        var done = 0
        var index = 0
        while done < total {
            guard index < candidates.count else {
                throw ValidationError("only \(done) of \(total) people could be deleted: the workload is too small")
            }
            let person = candidates[index]
            index += stride
            let probe = Probe(person: person)
            guard try probe.isAllowed(client, token: token) else { continue }

            var watch = Stopwatch()
            try writer.send("dn: uid=\(probe.name),ou=people,dc=example,dc=com\nchangetype: delete\n\n")
            var waited = 0
            while try probe.isAllowed(client, token: token) {
                waited += 1
                // The first deletion also waits for the daemon's first syncrepl refresh and its
                // reconciliation to end, which /readyz does not wait for.
                let limit = done == 0 ? max(limitSeconds, 900) : limitSeconds
                guard watch.elapsed < .seconds(limit) else {
                    throw ValidationError("\(probe.name): still allowed \(limit) s after the deletion")
                }
                guard writer.isRunning else { throw ValidationError("ldapmodify ended: \(writer.errors())") }
                usleep(pollMicroseconds)
            }
            let elapsed = watch.lap()
            done += 1
            guard done > warmup else { continue }
            polls += waited
            let micros = UInt64(elapsed.components.seconds) * 1_000_000
                + UInt64(elapsed.components.attoseconds / 1_000_000_000_000)
            _ = histogram.record(micros)
        }
        func ms(_ micros: UInt64) -> String { String(format: "%.2f", Double(micros) / 1000) }
        Report.line("syncrepl.count", "\(histogram.totalCount)", note: "\(warmup) warm-up deletions not counted")
        Report.line(
            "syncrepl.checks_per_change", String(format: "%.1f", Double(polls) / Double(max(count, 1))),
            note: "asked every \(pollMicroseconds) µs while waiting")
        Report.line("syncrepl.p50_ms", ms(histogram.valueAtPercentile(50)))
        Report.line("syncrepl.p90_ms", ms(histogram.valueAtPercentile(90)))
        Report.line("syncrepl.p99_ms", ms(histogram.valueAtPercentile(99)), note: "budget ≤ 1000 ms")
        Report.line("syncrepl.max_ms", ms(histogram.max))
    }

    /// One person's department grant, asked of `/v1/check` (the same grant the check load asks).
    struct Probe {
        var person: Int
        var name: String { String(format: "u%06d", person) }

        func isAllowed(_ client: LoopbackHTTP, token: String) throws -> Bool {
            let department = String(format: "%02d", person % 20)
            let body = #"{"subject":"\#(name)","agent":"agent-\#(department)","scope":"docs:read","resource":"wiki:Dept \#(department)"}"#
            let response = try client.post(
                "/v1/check", headers: [("Authorization", "Bearer \(token)")], body: Array(body.utf8))
            guard response.status == 200 else {
                throw ValidationError("check for \(name): \(response.status) \(response.body)")
            }
            return response.body.contains(#""allowed":true"#)
        }
    }
}

/// One `ldapmodify` process that applies the LDIF records written to it as they arrive, so
/// a change reaches slapd without a process start in between.
final class LDIFWriter {
    private let process = Process()
    private let input = Pipe()
    private let errorOutput = Pipe()

    init(url: String, passwordFile: String) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/ldapmodify")
        process.arguments = ["-x", "-H", url, "-D", "cn=admin,dc=example,dc=com", "-y", passwordFile]
        process.standardInput = input
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errorOutput
        try process.run()
    }

    var isRunning: Bool { process.isRunning }

    func send(_ ldif: String) throws {
        try input.fileHandleForWriting.write(contentsOf: Data(ldif.utf8))
    }

    func errors() -> String {
        String(decoding: errorOutput.fileHandleForReading.availableData, as: UTF8.self)
    }

    func finish() {
        try? input.fileHandleForWriting.close()
        process.waitUntilExit()
    }
}
