import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Linux's real-time scheduling for the calling thread.
public enum ThreadScheduling {
    /// The real-time priorities Linux gives (`sched_get_priority_min` to `_max` of `SCHED_RR`).
    public static let priorities: ClosedRange<Int32> = 1...99

    /// Puts the calling thread in the round-robin real-time class (`SCHED_RR`) at `priority`
    /// (1 to 99): it runs before every thread of the normal class as soon as it can run, and
    /// shares its core only with real-time threads. Threads it starts later do not inherit the
    /// class (`SCHED_RESET_ON_FORK`). Returns nil, or why the system refused: without
    /// `CAP_SYS_NICE` a thread may rise only up to its `RLIMIT_RTPRIO` (systemd's
    /// `LimitRTPRIO=`), and a seccomp filter such as systemd's `RestrictRealtime=yes` refuses it
    /// outright.
    public static func roundRobin(priority: Int32) -> String? {
        #if os(Linux)
        let resetOnFork: Int32 = 0x4000_0000
        var parameters = sched_param(sched_priority: priority)
        if sched_setscheduler(0, Int32(SCHED_RR) | resetOnFork, &parameters) == 0 { return nil }
        return String(cString: strerror(errno))
        #else
        return "real-time scheduling is not available on this system"
        #endif
    }
}
