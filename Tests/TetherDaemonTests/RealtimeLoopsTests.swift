import Foundation
import Testing
import TetherCore

/// `http.realtimePriority`: the event loops in the round-robin real-time class where the
/// system allows it, the daemon serving as before where it does not.
@Suite(.serialized) struct RealtimeLoopsTests {
    /// A thread of the daemon: its kernel name, scheduling policy (2 is SCHED_RR) and
    /// real-time priority, from `/proc/<pid>/task/<tid>/stat`.
    struct ThreadState: Equatable {
        var name: String
        var policy: Int
        var priority: Int
    }

    static func threads(of pid: Int32) throws -> [ThreadState] {
        let tasks = "/proc/\(pid)/task"
        return try FileManager.default.contentsOfDirectory(atPath: tasks).compactMap { tid in
            guard let stat = try? String(contentsOfFile: "\(tasks)/\(tid)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")"),
                let open = stat.firstIndex(of: "(")
            else { return nil }
            // Fields after the name, which may hold spaces: the third field is the 1st here.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 38, let priority = Int(fields[37]), let policy = Int(fields[38]) else { return nil }
            return ThreadState(name: String(stat[stat.index(after: open)..<close]), policy: policy, priority: priority)
        }
    }

    /// Whether a thread of this process may enter the real-time class (root, CAP_SYS_NICE, or
    /// RLIMIT_RTPRIO): asked on a thread made for the question, so no test thread changes class.
    static func realtimeAllowed() async -> Bool {
        await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: ThreadScheduling.roundRobin(priority: 1) == nil) }.start()
        }
    }

    @Test func theEventLoopsRunInTheRealTimeClassAndOnlyThey() async throws {
        let daemon = try DaemonProcess(config: SystemdLifecycleTests.config, http: "realtimePriority: 3")
        defer { daemon.stop() }
        try await daemon.waitUntilReady()
        let threads = try Self.threads(of: daemon.process.processIdentifier)
        let loops = threads.filter { $0.name.hasPrefix("NIO-") }
        try #require(!loops.isEmpty, "no event loop thread found among \(threads)")
        let others = threads.filter { !$0.name.hasPrefix("NIO-") }
        if await Self.realtimeAllowed() {
            #expect(loops.allSatisfy { $0.policy == 2 && $0.priority == 3 }, "\(loops)")
            #expect(daemon.log().contains("the event loops answer in the real-time scheduling class"))
        } else {
            #expect(loops.allSatisfy { $0.policy == 0 }, "\(loops)")
            #expect(daemon.log().contains("http.realtimePriority was refused"))
        }
        // The writers, the reconciliation and the pool keep the normal classes; so do threads
        // started by a loop later (SCHED_RESET_ON_FORK).
        #expect(others.allSatisfy { $0.policy != 2 && $0.policy != 1 }, "\(others)")
        #expect(try await daemon.get("/readyz").0 == 200)
        #expect(HealthyStartTests.errorLines(daemon.log()).isEmpty, "\(daemon.log())")
    }

    @Test func whereTheSystemRefusesItTheDaemonSaysHowToAllowItAndServes() async throws {
        // No CAP_SYS_NICE and no RLIMIT_RTPRIO: what an unprivileged service gets.
        let launcher = ["/usr/bin/prlimit", "--rtprio=0", "/usr/bin/setpriv", "--bounding-set", "-sys_nice", "--inh-caps", "-sys_nice"]
        try #require(FileManager.default.isExecutableFile(atPath: launcher[0]) && FileManager.default.isExecutableFile(atPath: launcher[2]))
        let daemon = try DaemonProcess(config: SystemdLifecycleTests.config, http: "realtimePriority: 3", launcher: launcher)
        defer { daemon.stop() }
        try await daemon.waitUntilReady()
        let log = daemon.log()
        let warning = try #require(log.split(separator: "\n").first { $0.contains("http.realtimePriority was refused") }, "\(log)")
        #expect(warning.hasPrefix("warning "))
        #expect(warning.contains("LimitRTPRIO=3") && warning.contains("RestrictRealtime=no"))
        // The daemon the launcher started is the process whose threads these are.
        let pid = daemon.process.processIdentifier
        let loops = try Self.threads(of: pid).filter { $0.name.hasPrefix("NIO-") }
        try #require(!loops.isEmpty)
        #expect(loops.allSatisfy { $0.policy == 0 }, "\(loops)")
        #expect(try await daemon.get("/readyz").0 == 200)
        #expect(HealthyStartTests.errorLines(log).isEmpty, "\(log)")
    }
}
