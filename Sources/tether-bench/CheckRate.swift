import ArgumentParser
import Foundation
import Histogram
import TetherCore
#if canImport(Glibc)
import Glibc
#endif

/// `POST /v1/check` at a fixed offered rate: the open-loop measure of the SPEC §13 line
/// "≥ 20,000/s, p99 ≤ 2 ms". Request k is due at start + k / rate on connection k mod N,
/// whether or not earlier answers have come; a request that waits for its connection is timed
/// from when it was due, so a stall shows in the latency of every request it holds up (no
/// coordinated omission, as wrk2 measures). wrk, by contrast, sends as fast as answers come,
/// so on two cores shared with the daemon it measures latency at saturation.
///
/// One thread sends and reads every connection: the generator takes at most one core, and
/// reports what it took.
struct CheckRate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-rate", abstract: "Check latency at a fixed offered rate against a running tether serve.")

    @Option(help: "The folder scripts/gen-workload wrote (check.token, workload.json).") var workload: String
    @Option(help: "The HTTP port tether serve listens on (127.0.0.1).") var port: UInt16
    @Option(help: "Requests offered a second.") var rate = 20_000
    @Option(help: "Keep-alive connections the requests are spread over.") var connections = 16
    @Option(help: "Seconds measured.") var seconds = 10
    @Option(help: "Seconds sent first and not measured.") var warmup = 2
    @Option(
        help: ArgumentHelp(
            "Real-time priority (SCHED_RR) the generator asks for, as the daemon's event loops do with http.realtimePriority.",
            discussion: "On a machine the generator shares with the daemon it otherwise waits for a core like any other thread, and its late sends count in the latency."))
    var realtimePriority: Int32?

    func validate() throws {
        guard rate > 0, connections > 0, seconds > 0, warmup >= 0 else {
            throw ValidationError("--rate, --connections and --seconds must be positive, --warmup not negative")
        }
        let priorities = ThreadScheduling.priorities
        if let priority = realtimePriority, !priorities.contains(priority) {
            throw ValidationError("--realtime-priority must be from \(priorities.lowerBound) to \(priorities.upperBound)")
        }
    }

    func run() throws {
        let people = try WorkloadSummary.read(workload).people
        // The mix asks of people from u001000 on (sponsors and managers come first).
        guard people > 1_000 else {
            throw ValidationError("\(workload): \(people) people; the check mix needs a workload of more than 1,000")
        }
        let token = try String(decoding: SecretFile.read(workload + "/check.token"), as: UTF8.self)
        let requests = CheckQuestions.requests(people: people, token: token)
        let load = OpenLoop(
            requests: requests, connections: try (0..<connections).map { _ in try RawConnection(port: port) },
            interval: 1e9 / Double(rate))
        // The generator sends and reads on this thread.
        let refusal = realtimePriority.flatMap { ThreadScheduling.roundRobin(priority: $0) }
        let usage = CPUTime()
        let outcome = try load.run(warmup: UInt64(warmup) * 1_000_000_000, measured: UInt64(seconds) * 1_000_000_000)
        let cpu = usage.elapsed()

        let latency = outcome.latency
        func ms(_ nanos: UInt64) -> String { String(format: "%.3f", Double(nanos) / 1e6) }
        Report.line("checkrate.offered_per_second", "\(rate)", note: "\(connections) connections, \(seconds) s measured after \(warmup) s")
        Report.line(
            "checkrate.answered_per_second", String(format: "%.0f", Double(latency.totalCount) / Double(seconds)),
            note: "\(latency.totalCount) answers to requests due in the measured seconds")
        Report.line("checkrate.non_2xx", "\(outcome.non2xx)", note: outcome.firstFailure.map { "the first: \($0)" })
        Report.line("checkrate.p50_ms", ms(latency.valueAtPercentile(50)))
        Report.line("checkrate.p90_ms", ms(latency.valueAtPercentile(90)))
        Report.line("checkrate.p99_ms", ms(latency.valueAtPercentile(99)), note: "budget ≤ 2 ms at ≥ 20,000/s")
        Report.line("checkrate.p999_ms", ms(latency.valueAtPercentile(99.9)))
        Report.line("checkrate.max_ms", ms(latency.max))
        Report.line(
            "checkrate.sent_late_p99_ms", ms(outcome.late.valueAtPercentile(99)),
            note: "due → sent: its connection still waiting, or the generator itself not on a core")
        Report.line(
            "checkrate.service_p99_ms", ms(outcome.service.valueAtPercentile(99)),
            note: "sent → answered, max \(ms(outcome.service.max))")
        Report.line(
            "checkrate.generator_class",
            realtimePriority.map { refusal == nil ? "SCHED_RR_\($0)" : "normal" } ?? "normal",
            note: refusal.map { "SCHED_RR was refused: \($0)" })
        Report.line(
            "checkrate.generator_cpu_percent", String(format: "%.0f", cpu / (Double(warmup + seconds)) * 100),
            note: "of one core, for the whole run")
    }
}

/// The rotating mix scripts/bench and scripts/bench-check send: three allowed questions for
/// every denied one, over 200 people spread through the workload.
enum CheckQuestions {
    static func requests(people: Int, token: String) -> [[UInt8]] {
        (0..<200).map { index in
            let person = 1_000 + (index * 487) % (people - 1_000)
            let name = "u" + String(person).leftPadded(to: 6)
            let agent = String(person % 20).leftPadded(to: 2)
            let body =
                index % 4 == 3
                ? #"{"subject":"\#(name)","agent":"agent-19","scope":"admin:all","resource":"nowhere"}"#
                : #"{"subject":"\#(name)","agent":"agent-\#(agent)","scope":"docs:read","resource":"wiki:Dept \#(agent)"}"#
            let head =
                "POST /v1/check HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(token)\r\n"
                + "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n"
            return Array((head + body).utf8)
        }
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}

/// The schedule, the connections and the latency of each answer.
struct OpenLoop {
    struct Outcome {
        /// From when each request was due to its answer: what a caller at this rate sees.
        var latency: Histogram<UInt64>
        /// From when each request was sent to its answer.
        var service: Histogram<UInt64>
        /// From when each request was due to when it was sent.
        var late: Histogram<UInt64>
        var non2xx: Int
        /// The first answer that was not a 2xx, as it began.
        var firstFailure: String?
    }

    let requests: [[UInt8]]
    let connections: [RawConnection]
    /// Nanoseconds between two requests due.
    let interval: Double
    /// The shortest wait for the next request due, in nanoseconds.
    static let slack: UInt64 = 50_000

    /// Sends for `warmup` + `measured` nanoseconds, then waits (at most 10 s) for the answers
    /// still owed. Only requests due after the warm-up are counted.
    func run(warmup: UInt64, measured: UInt64) throws -> Outcome {
        var latency = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
        var (service, late) = (latency, latency)
        var non2xx = 0
        var firstFailure: String?
        let start = Monotonic.now() + 1_000_000
        let counted = start + warmup
        let end = counted + measured
        var next: UInt64 = 0
        func due(_ index: UInt64) -> UInt64 { start + UInt64(Double(index) * interval) }
        let descriptors = connections.map(\.fd)
        while true {
            var now = Monotonic.now()
            while due(next) <= now, due(next) < end {
                let slot = Int(next % UInt64(connections.count))
                connections[slot].owed.append((due(next), Int(next % UInt64(requests.count))))
                next += 1
                try connections[slot].sendNext(requests)
            }
            let sending = due(next) < end
            guard sending || connections.contains(where: { $0.inFlight != nil }) else { break }
            guard sending || now < end + 10_000_000_000 else {
                throw ValidationError("answers still owed 10 s after the last request was due")
            }
            // At least a timer slack's wait (50 µs, what Linux gives a thread of the normal
            // class by default): in the real-time class, which has none, waking for every
            // request due on its own took a quarter of a core more from the daemon's writer.
            // A request sent later for it is timed from when it was due.
            let wait = sending ? max(due(next) - min(now, due(next)), Self.slack) : 100_000_000
            let readable = try Readiness.wait(for: descriptors, nanoseconds: wait)
            now = Monotonic.now()
            for slot in readable {
                if let answer = try connections[slot].read() {
                    if answer.dueAt >= counted {
                        _ = latency.record(now - answer.dueAt)
                        _ = service.record(now - answer.sentAt)
                        _ = late.record(answer.sentAt - answer.dueAt)
                        if !(200..<300).contains(answer.status) {
                            non2xx += 1
                            firstFailure = firstFailure ?? answer.text
                        }
                    }
                    try connections[slot].sendNext(requests)
                }
            }
        }
        return Outcome(latency: latency, service: service, late: late, non2xx: non2xx, firstFailure: firstFailure)
    }
}

/// One keep-alive loopback connection, one request in flight at a time, the rest owed in order.
final class RawConnection {
    struct Answer {
        var dueAt: UInt64
        /// When it was sent: later than due when the connection was busy or the generator late.
        var sentAt: UInt64
        var status: Int
        /// The answer's first bytes, kept only when it is not a 2xx.
        var text: String?
    }

    let fd: Int32
    /// Requests due and not yet sent: when each was due, and which to send.
    var owed: [(dueAt: UInt64, request: Int)] = []
    /// When the request in flight was due, and when it was sent.
    private(set) var inFlight: (dueAt: UInt64, sentAt: UInt64)?
    /// What has arrived of the answer in flight.
    private let buffer = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: 65_536)
    private var filled = 0

    init(port: UInt16) throws {
        fd = try LoopbackHTTP.connect(port: port)
    }

    deinit {
        close(fd)
        buffer.deallocate()
    }

    /// Sends the oldest owed request, if none is in flight.
    func sendNext(_ requests: [[UInt8]]) throws {
        guard inFlight == nil, !owed.isEmpty else { return }
        let (dueAt, index) = owed.removeFirst()
        let sent = requests[index].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent == requests[index].count else { throw ValidationError("send: \(String(cString: strerror(errno)))") }
        inFlight = (dueAt, Monotonic.now())
    }

    /// Reads what arrived; returns the answer in flight once it is complete.
    func read() throws -> Answer? {
        guard filled < buffer.count else { throw ValidationError("an answer longer than 64 KiB") }
        let count = recv(fd, buffer.baseAddress! + filled, buffer.count - filled, 0)
        guard count > 0 else {
            throw ValidationError(count == 0 ? "the daemon closed a connection" : "recv: \(String(cString: strerror(errno)))")
        }
        filled += count
        let bytes = UnsafeBufferPointer(rebasing: buffer[..<filled])
        guard let (dueAt, sentAt) = inFlight, let (status, length) = Self.answer(in: bytes) else { return nil }
        let text = (200..<300).contains(status) ? nil : String(decoding: bytes.prefix(min(length, 300)), as: UTF8.self)
        // Keep-alive with one request in flight: nothing follows the answer.
        filled = 0
        inFlight = nil
        return Answer(dueAt: dueAt, sentAt: sentAt, status: status, text: text)
    }

    /// The status and length of the complete answer at the start of `bytes`, if there is one.
    static func answer(in bytes: UnsafeBufferPointer<UInt8>) -> (status: Int, length: Int)? {
        guard bytes.count >= 16 else { return nil }
        var headEnd: Int?
        for index in 12..<(bytes.count - 3)
        where bytes[index] == 13 && bytes[index + 1] == 10 && bytes[index + 2] == 13 && bytes[index + 3] == 10 {
            headEnd = index
            break
        }
        guard let headEnd else { return nil }
        let status = bytes[9..<12].reduce(0) { $0 * 10 + Int($1) - 48 }
        let name = Array("\r\ncontent-length:".utf8)
        var bodyLength = 0
        var index = 0
        search: while index + name.count <= headEnd {
            for offset in 0..<name.count where bytes[index + offset] | (offset >= 2 ? 0x20 : 0) != name[offset] {
                index += 1
                continue search
            }
            index += name.count
            while index < headEnd, bytes[index] == 32 { index += 1 }
            while index < headEnd, (48...57).contains(bytes[index]) {
                bodyLength = bodyLength * 10 + Int(bytes[index]) - 48
                index += 1
            }
            break
        }
        let total = headEnd + 4 + bodyLength
        return bytes.count >= total ? (status, total) : nil
    }
}

/// Which descriptors can be read, waiting at most a given time: `select`, for its microsecond
/// timeout (`poll` counts milliseconds, and a request is due every 50 µs at 20,000/s).
enum Readiness {
    /// The positions in `descriptors` of those that can be read.
    static func wait(for descriptors: [Int32], nanoseconds: UInt64) throws -> [Int] {
        var set = fd_set()
        let bits = Int.bitWidth
        guard let highest = descriptors.max(), highest < FD_SETSIZE else { throw ValidationError("too many connections for select") }
        withUnsafeMutableBytes(of: &set) { raw in
            let words = raw.bindMemory(to: Int.self)
            for fd in descriptors { words[Int(fd) / bits] |= 1 << (Int(fd) % bits) }
        }
        var timeout = timeval(tv_sec: Int(nanoseconds / 1_000_000_000), tv_usec: Int(nanoseconds % 1_000_000_000 / 1_000))
        let ready = select(highest + 1, &set, nil, nil, &timeout)
        guard ready >= 0 || errno == EINTR else { throw ValidationError("select: \(String(cString: strerror(errno)))") }
        guard ready > 0 else { return [] }
        return withUnsafeBytes(of: &set) { raw in
            let words = raw.bindMemory(to: Int.self)
            return descriptors.indices.filter { words[Int(descriptors[$0]) / bits] & (1 << (Int(descriptors[$0]) % bits)) != 0 }
        }
    }
}

/// CLOCK_MONOTONIC in nanoseconds.
enum Monotonic {
    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }
}

/// This process's CPU time (user and system) since it was made.
struct CPUTime {
    private let start = Self.seconds()

    func elapsed() -> Double { Self.seconds() - start }

    private static func seconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
            + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }
}
