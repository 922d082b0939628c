import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A serial executor that runs every job on one thread of its own.
///
/// An actor whose work blocks runs on one: libldap's calls (connect, bind, `ldap_result`,
/// `ldap_sync_poll`, with an `LDAP*` that must stay on one thread), or a synchronous SQLite
/// write. Its blocking calls never occupy a thread of Swift's cooperative pool, and with a
/// lower ``Priority`` they give way to the rest of the process.
public final class ThreadExecutor: SerialExecutor, @unchecked Sendable {
    /// The scheduling priority of the thread.
    public enum Priority: Sendable {
        /// The process's own.
        case normal
        /// The lowest time-sharing priority (nice 19): the thread gets a small share of a busy
        /// core, but once it has the core it keeps it for its time slice.
        case low
        /// Linux's idle scheduling class (`SCHED_IDLE`): the thread runs only on a core nothing
        /// else wants, and any other thread that wakes takes the core from it at once. On a
        /// saturated machine it may not run at all.
        case idle
    }

    // Guarded by `condition`.
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var stopping = false

    /// Starts the thread; it ends after ``stop()`` once every queued job has run.
    ///
    /// Linux keeps at most 15 bytes of a thread's name and refuses a longer one: the thread
    /// then shows in `top -H` and `/proc` under the name of the thread that made it.
    public init(name: String, priority: Priority = .normal) {
        precondition(name.utf8.count <= 15, "a thread name Linux shows has at most 15 bytes: \(name)")
        let thread = Thread { [self] in
            Self.name(name)
            Self.lower(to: priority)
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

    /// Names the calling thread in the kernel, where `top -H`, `ps -L` and profilers read it.
    /// Foundation's `Thread.name` does not reach the kernel on Linux: the thread would show
    /// under the name of the thread that started it. Glibc declares `pthread_setname_np` only
    /// for _GNU_SOURCE, so the name is written where that function writes it.
    private static func name(_ name: String) {
        #if os(Linux)
        let file = open("/proc/thread-self/comm", O_WRONLY)
        guard file >= 0 else { return }
        _ = name.withCString { write(file, $0, strlen($0)) }
        close(file)
        #endif
    }

    /// Gives the calling thread `priority`. Both belong to the thread on Linux (`pid` and
    /// `who` 0 are the caller), and lowering them needs no privilege. Where the idle class is
    /// refused the thread falls back to nice 19; where that is refused too it keeps the
    /// process's priority: slower for the rest, never wrong.
    private static func lower(to priority: Priority) {
        #if os(Linux)
        if priority == .idle {
            // SCHED_IDLE (<linux/sched.h>); glibc declares it only for _GNU_SOURCE.
            let idle: Int32 = 5
            var parameters = sched_param(sched_priority: 0)
            if sched_setscheduler(0, idle, &parameters) == 0 { return }
        }
        if priority != .normal { _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 19) }
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
