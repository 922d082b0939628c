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

    /// The nice value of the thread the job runs on, and the thread's id.
    func niceAndThread() -> (Int32, Int) {
        errno = 0
        return (getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0), Int(bitPattern: UInt(pthread_self())))
    }
}

@Suite("A thread of its own")
struct ThreadExecutorTests {
    @Test func aBackgroundThreadRunsItsJobsAtTheLowestPriorityAndTheCallerKeepsItsOwn() async {
        let background = OnThread(priority: .background)
        let normal = OnThread(priority: .normal)
        defer {
            background.executor.stop()
            normal.executor.stop()
        }
        let (lowered, first) = await background.niceAndThread()
        let (_, second) = await background.niceAndThread()
        #expect(lowered == 19)
        #expect(first == second, "every job runs on the one thread")
        let (kept, _) = await normal.niceAndThread()
        #expect(kept == getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0))
        #expect(kept != 19)
    }
}
