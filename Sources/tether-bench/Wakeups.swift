import ArgumentParser
import Foundation
import Histogram
#if canImport(Glibc)
import Glibc
#endif

/// How late a thread that asks to wake at a given time is woken: the machine's own latency
/// floor, against which the check's p99 is read (as `cyclictest` measures it).
///
/// As many threads as the machine has cores each ask to wake every `--interval-us` at an
/// absolute time and record how late they woke. (They are not pinned: glibc declares the
/// affinity calls only for _GNU_SOURCE; real-time threads are spread over the cores anyway.)
/// With `--realtime` they ask for SCHED_FIFO at the highest priority: nothing else in the
/// machine runs before them, so what is left is what the machine itself does (interrupts, the
/// kernel with preemption off, a hypervisor that takes the core away). Without it they run at
/// the caller's priority, like the daemon's event loops in the normal class.
struct Wakeups: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "How late a thread per core wakes when it asks to: the machine's own latency floor.")

    @Option(help: "Seconds measured.") var seconds = 10
    @Option(help: "Microseconds between the wake-ups each thread asks for.") var intervalUs = 1_000
    @Flag(help: "Ask for SCHED_FIFO at the highest priority (needs CAP_SYS_NICE; the note says if it was refused).")
    var realtime = false

    func validate() throws {
        guard seconds > 0, intervalUs >= 50 else { throw ValidationError("--seconds must be positive and --interval-us at least 50") }
    }

    func run() throws {
        let cores = max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        let meters = (0..<cores).map { _ in WakeupMeter(realtime: realtime, interval: UInt64(intervalUs) * 1_000) }
        let end = Monotonic.now() + UInt64(seconds) * 1_000_000_000
        let done = DispatchGroup()
        for meter in meters {
            done.enter()
            let thread = Thread {
                meter.run(until: end)
                done.leave()
            }
            thread.start()
        }
        done.wait()

        var late = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
        for meter in meters { late.add(meter.late) }
        let policies = Set(meters.map(\.policy))
        func ms(_ nanos: UInt64) -> String { String(format: "%.3f", Double(nanos) / 1e6) }
        func over(_ millis: UInt64) -> String {
            let floor = millis * 1_000_000
            return "\(late.max < floor ? 0 : late.count(within: floor...late.max))"
        }
        Report.line(
            "wakeups.threads", "\(cores)",
            note: "as many as cores, \(policies.sorted().joined(separator: ", ")), a wake-up asked for every \(intervalUs) µs for \(seconds) s")
        Report.line("wakeups.count", "\(late.totalCount)")
        Report.line("wakeups.p50_ms", ms(late.valueAtPercentile(50)), note: "how late, from the time asked for")
        Report.line("wakeups.p99_ms", ms(late.valueAtPercentile(99)))
        Report.line("wakeups.p999_ms", ms(late.valueAtPercentile(99.9)))
        Report.line("wakeups.max_ms", ms(late.max))
        Report.line("wakeups.over_1ms", over(1), note: "wake-ups at least 1 ms late")
        Report.line("wakeups.over_2ms", over(2), note: "wake-ups at least 2 ms late: the check's whole budget")
    }
}

/// One thread's wake-ups and how late each came.
private final class WakeupMeter: @unchecked Sendable {
    let realtime: Bool
    let interval: UInt64
    // Written by the meter's thread only, read once it has ended.
    private(set) var late = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
    private(set) var policy = "the caller's priority"

    init(realtime: Bool, interval: UInt64) {
        self.realtime = realtime
        self.interval = interval
    }

    func run(until end: UInt64) {
        if realtime {
            var parameters = sched_param(sched_priority: sched_get_priority_max(Int32(SCHED_FIFO)))
            policy = sched_setscheduler(0, Int32(SCHED_FIFO), &parameters) == 0
                ? "SCHED_FIFO \(parameters.sched_priority)" : "SCHED_FIFO refused, the caller's priority"
        }
        var due = Monotonic.now()
        while true {
            due += interval
            var time = timespec(tv_sec: Int(due / 1_000_000_000), tv_nsec: Int(due % 1_000_000_000))
            while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &time, nil) == EINTR {}
            let now = Monotonic.now()
            _ = late.record(now - min(now, due))
            if now >= end { return }
            // A wake-up later than the next one asked for: the next is asked from now, so one
            // stall is counted once.
            if now > due + interval { due = now }
        }
    }
}
