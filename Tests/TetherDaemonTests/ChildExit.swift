import Foundation

/// The end of a child process, awaited without holding a thread: `Process.terminationHandler`
/// resumes the waiters. Every wait has a deadline, so a child that never ends (or one reaped
/// behind Foundation's back) fails the test instead of hanging it.
final class ChildExit: @unchecked Sendable {
    private let lock = NSLock()
    private var status: Int32?
    private var waiters: [UUID: (continuation: CheckedContinuation<Int32?, Never>, deadline: Task<Void, Never>)] = [:]

    /// Watches `process`; call before `process.run()`, as a handler set later can miss the exit.
    init(_ process: Process) {
        process.terminationHandler = { [self] ended in finish(ended.terminationStatus) }
    }

    /// The exit status (the signal's number when a signal ended it); nil while it runs.
    var exitStatus: Int32? { lock.withLock { status } }

    /// Waits until the process ends, returning its exit status; nil once `timeout` has passed.
    func wait(timeout: Duration) async -> Int32? {
        let id = UUID()
        return await withCheckedContinuation { continuation in
            lock.withLock {
                if let status {
                    continuation.resume(returning: status)
                    return
                }
                let deadline = Task { [weak self] in
                    try? await Task.sleep(for: timeout)
                    self?.expire(id)
                }
                waiters[id] = (continuation, deadline)
            }
        }
    }

    private func finish(_ exitStatus: Int32) {
        let waiting = lock.withLock {
            status = exitStatus
            defer { waiters.removeAll() }
            return waiters.values
        }
        for waiter in waiting {
            waiter.deadline.cancel()
            waiter.continuation.resume(returning: exitStatus)
        }
    }

    private func expire(_ id: UUID) {
        // Already resumed by the exit when it is no longer listed.
        lock.withLock { waiters.removeValue(forKey: id) }?.continuation.resume(returning: nil)
    }
}
