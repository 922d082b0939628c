import Synchronization

/// A first-in, first-out lock for async code.
///
/// The engine is an actor, but actors are re-entrant: while one decision awaits the store,
/// another could read the same identity, decide against the old state, and overwrite the
/// first. Every read–decide–write of the engine runs under this lock instead, in arrival order.
final class AsyncMutex: Sendable {
    private struct State {
        var locked = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    func lock() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let acquired = state.withLock { state in
                if state.locked {
                    state.waiters.append(continuation)
                    return false
                }
                state.locked = true
                return true
            }
            if acquired { continuation.resume() }
        }
    }

    func unlock() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiters.isEmpty {
                state.locked = false
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume()
    }

    /// Runs `body` holding the lock.
    func withLock<T>(
        isolation: isolated (any Actor)? = #isolation, _ body: () async throws -> sending T
    ) async rethrows -> sending T {
        await lock()
        defer { unlock() }
        return try await body()
    }
}
