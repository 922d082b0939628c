import ArgumentParser
import Foundation
import TetherCore
import TetherStore

/// Fills a decision log with generated decisions, as `/v1/check` would over `days` days, and
/// times `tether decisions` queries on it (SPEC §16: `--subject S --since T` under 100 ms
/// with 10 million stored), reporting the bytes each stored decision takes.
struct DecisionsBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decisions", abstract: "Decision log size and query time with millions of decisions stored.")

    @Option(help: "The decision log file to create (replaced if it exists).") var log: String
    @Option(help: "How many decisions to store.") var count = 10_000_000
    @Option(help: "How many people ask.") var people = 10_000
    @Option(help: "Over how many days, ending now.") var days = 30
    @Option(help: "The tether binary whose `decisions` command is timed (default: beside this one).") var tether: String?
    @Option(help: "How many times each query is run; the median is reported.") var runs = 5

    func run() async throws {
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: log + suffix) }
        let store = try DecisionLogStore(path: log)
        let end = Date()
        let span = Double(days) * 86_400
        let start = end.addingTimeInterval(-span)
        var generator = SystemRandomNumberGenerator()
        var watch = Stopwatch()
        let batchSize = 10_000
        var written = 0
        while written < count {
            let size = min(batchSize, count - written)
            var batch: [DecisionRecord] = []
            batch.reserveCapacity(size)
            for index in written..<(written + size) {
                let time = start.addingTimeInterval(span * Double(index) / Double(count))
                let person = Int.random(in: 0..<people, using: &generator)
                let agent = person % 20
                let allowed = index % 4 != 3
                batch.append(DecisionRecord(
                    id: DecisionID.next(at: time), time: time, subject: String(format: "u%06d", person),
                    agent: String(format: "agent-%02d", agent), scope: allowed ? "docs:read" : "admin:all",
                    resource: allowed ? String(format: "wiki:Dept %02d", agent) : "nowhere", allowed: allowed,
                    grant: allowed ? Grant(
                        subject: String(format: "u%06d", person), agent: String(format: "agent-%02d", agent), scope: "docs:read",
                        resource: String(format: "wiki:Dept %02d", agent)).id : nil,
                    policy: allowed ? String(format: "dept-%02d-docs", agent) : nil, policySet: "sha256:" + String(repeating: "ab", count: 32),
                    revision: 1_000_000 + index / 1_000, caller: index % 2 == 0 ? "gateway-eu" : "gateway-us"))
            }
            try await store.write(batch)
            written += size
        }
        let fill = watch.lap()
        Report.line("decisions.stored", "\(written)")
        Report.line("decisions.fill_seconds", Report.seconds(fill))
        Report.line(
            "decisions.fill_per_second", String(format: "%.0f", Double(written) / max(0.001, Double(fill.components.seconds) + Double(fill.components.attoseconds) / 1e18)),
            note: "batches of \(batchSize), one transaction each")
        let bytes = try await store.bytesUsed()
        Report.line("decisions.bytes_used", "\(bytes)")
        Report.line("decisions.bytes_per_decision", String(format: "%.1f", Double(bytes) / Double(max(1, written))), note: "rows, names and indexes")

        let binary = tether ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("tether").path
        let subject = String(format: "u%06d", people / 2)
        let dayAgo = Timestamp.string(end.addingTimeInterval(-86_400))
        let hourAgo = Timestamp.string(end.addingTimeInterval(-3_600))
        let queries: [(String, [String])] = [
            ("subject_since_1d", ["--subject", subject, "--since", dayAgo]),
            ("subject_since_30d", ["--subject", subject, "--since", Timestamp.string(start)]),
            ("agent_since_1h", ["--agent", "agent-07", "--since", hourAgo]),
            ("denied_since_1h", ["--denied", "--since", hourAgo]),
        ]
        for (name, arguments) in queries {
            var times: [Duration] = []
            var lines = 0
            for _ in 0..<runs {
                let (elapsed, output) = try Self.time(binary, ["decisions", "--log", log, "--json"] + arguments)
                times.append(elapsed)
                lines = output
            }
            Report.line(
                "decisions.query.\(name)_ms", String(format: "%.1f", Self.milliseconds(times.sorted()[times.count / 2])),
                note: "median of \(runs), `tether decisions --json \(arguments.joined(separator: " "))`, process start to exit, \(lines) decisions")
        }
    }

    static func milliseconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
    }

    /// Runs `binary` with `arguments`; the time from start to exit and the lines it printed.
    static func time(_ binary: String, _ arguments: [String]) throws -> (Duration, Int) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        var watch = Stopwatch()
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let elapsed = watch.lap()
        guard process.terminationStatus == 0 else { throw ValidationError("\(binary) \(arguments) exited \(process.terminationStatus)") }
        return (elapsed, output.count(where: { $0 == UInt8(ascii: "\n") }))
    }
}
