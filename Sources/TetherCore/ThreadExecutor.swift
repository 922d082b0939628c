import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A serial executor that runs every job on one thread of its own.
///
/// An actor whose work blocks runs on one: libldap's calls (connect, bind, `ldap_result`,
/// `ldap_sync_poll`, with an `LDAP*` that must stay on one thread), or a synchronous SQLite
/// write. Its blocking calls never occupy a thread of Swift's cooperative pool, and with a
/// ``Priority/background`` thread they only use what the rest of the process leaves.
public final class ThreadExecutor: SerialExecutor, @unchecked Sendable {
    /// The scheduling priority of the thread.
    public enum Priority: Sendable {
        /// The process's own.
        case normal
        /// The lowest time-sharing priority (nice 19): the thread runs when the process's other
        /// threads do not want the core, so bursts of its work do not delay theirs.
        case background
    }

    // Guarded by `condition`.
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var stopping = false

    /// Starts the thread; it ends after ``stop()`` once every queued job has run.
    public init(name: String, priority: Priority = .normal) {
        let thread = Thread { [self] in
            if priority == .background { Self.lowerPriority() }
            self.runLoop()
        }
        thread.name = name
        thread.start()
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    /// Lets the thread finish once the queue is empty.
    public func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }

    /// Gives the calling thread the lowest time-sharing priority. On Linux the nice value
    /// belongs to the thread (`who` 0 is the caller), not to the whole process. A refusal
    /// leaves the thread at the process's priority: slower for the rest, never wrong.
    private static func lowerPriority() {
        #if os(Linux)
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 19)
        #endif
    }

    private func runLoop() {
        var batch: [UnownedJob] = []
        while true {
            condition.lock()
            while jobs.isEmpty && !stopping { condition.wait() }
            if jobs.isEmpty {
                condition.unlock()
                return
            }
            swap(&batch, &jobs)
            condition.unlock()
            for job in batch { job.runSynchronously(on: asUnownedSerialExecutor()) }
            batch.removeAll(keepingCapacity: true)
        }
    }
}
