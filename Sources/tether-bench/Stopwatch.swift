import Foundation

/// Elapsed monotonic time.
struct Stopwatch {
    private var start = ContinuousClock.now

    /// The time since the start or the previous lap, without starting a new lap.
    var elapsed: Duration { ContinuousClock.now - start }

    /// The time since the start or the previous lap.
    mutating func lap() -> Duration {
        let now = ContinuousClock.now
        defer { start = now }
        return now - start
    }
}

/// One `key value  # note` line per figure, so scripts/bench can collect them.
enum Report {
    static func line(_ key: String, _ value: String, note: String? = nil) {
        print(note.map { "\(key) \(value)  # \($0)" } ?? "\(key) \(value)")
    }

    static func seconds(_ duration: Duration) -> String {
        String(format: "%.3f", Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18)
    }

    static func mib(_ bytes: Int) -> String { String(format: "%.1f", Double(bytes) / 1_048_576) }
}

/// This process's memory, from /proc/self/status.
enum ProcessMemory {
    /// VmHWM: the peak resident set size.
    static func peakResidentBytes() -> Int {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            // `VmHWM:\t 2878884 kB`, or with no space after the tab once the figure has 8 digits.
            let kib = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first.flatMap { Int($0) } ?? 0
            return kib * 1024
        }
        return 0
    }
}
