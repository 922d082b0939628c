import Synchronization

/// Wakes a waiting loop early. `ring()` may come from anywhere; one loop waits at a time. A ring
/// while nobody waits is kept, so the next wait returns at once: no wake-up is lost.
final class Doorbell: Sendable {
    private struct State {
        var rung = false
        var waiter: (id: UInt64, continuation: CheckedContinuation<Void, Never>)?
        var nextID: UInt64 = 0
    }

    private let state = Mutex(State())

    init() {}

    /// Wakes the waiting loop, or the next one to wait.
    func ring() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter.continuation
            }
            state.rung = true
            return nil
        }
        waiter?.resume()
    }

    /// Whether a ring is waiting to be answered; looking does not answer it.
    var isRung: Bool { state.withLock { $0.rung } }

    /// Answers a waiting ring, if any: the caller is about to look for new work anyway.
    func answer() {
        state.withLock { $0.rung = false }
    }

    /// Returns at a ring (answering it), after `duration`, or when the task is cancelled.
    func wait(atMost duration: Duration) async {
        if state.withLock({ state in
            defer { state.rung = false }
            return state.rung
        }) { return }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.waitForRing() }
            group.addTask { try? await Task.sleep(for: duration) }
            await group.next()
            group.cancelAll()
        }
    }

    private func waitForRing() async {
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state -> Bool in
                    // Checked under the lock the cancellation handler takes: no lost resume.
                    if state.rung || Task.isCancelled {
                        state.rung = false
                        return true
                    }
                    state.waiter = (id, continuation)
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                guard let waiter = state.waiter, waiter.id == id else { return nil }
                state.waiter = nil
                return waiter.continuation
            }
            waiter?.resume()
        }
    }
}
