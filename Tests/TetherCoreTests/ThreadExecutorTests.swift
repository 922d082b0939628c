import Foundation
import Testing

@testable import TetherCore

#if canImport(Glibc)
import Glibc
#endif

/// An actor whose jobs run on a ``ThreadExecutor``.
private actor OnThread {
    nonisolated let executor: ThreadExecutor
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

    init(priority: ThreadExecutor.Priority) { executor = ThreadExecutor(name: "test-thread", priority: priority) }

    /// The nice value of the thread the job runs on, the thread's id and its scheduling policy.
    func schedule() -> (nice: Int32, thread: Int, policy: Int32) {
        (getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0), Int(bitPattern: UInt(pthread_self())), sched_getscheduler(0))
    }

    /// The name the kernel shows for the thread the job runs on.
    func kernelName() throws -> String {
        try String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8).trimmingCharacters(in: .newlines)
    }
}

@Suite("A thread of its own")
struct ThreadExecutorTests {
    @Test func aLowThreadRunsItsJobsAtNice19AnIdleOneInTheIdleClassAndTheCallerKeepsItsOwn() async {
        let low = OnThread(priority: .low)
        let idle = OnThread(priority: .idle)
        let normal = OnThread(priority: .normal)
        defer {
            for thread in [low, idle, normal] { thread.executor.stop() }
        }
        let (lowered, first, _) = await low.schedule()
        let (_, second, _) = await low.schedule()
        #expect(lowered == 19)
        #expect(first == second, "every job runs on the one thread")
        let (_, _, policy) = await idle.schedule()
        #expect(policy == 5, "SCHED_IDLE")
        let (kept, _, normalPolicy) = await normal.schedule()
        #expect(kept == getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0))
        #expect(kept != 19 && normalPolicy == 0)
    }

    @Test func theKernelShowsTheThreadUnderItsName() async throws {
        let thread = OnThread(priority: .low)
        defer { thread.executor.stop() }
        #expect(try await thread.kernelName() == "test-thread")
    }
}
