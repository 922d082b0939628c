import Synchronization
import TetherCore
import TetherEngine

/// Operators' requests for a complete read now (`tether resync --full`), waiting for the
/// LDAP source's session to serve them.
final class ResyncRequests: Sendable {
    typealias Waiter = CheckedContinuation<ReconcileOutcome, any Error>

    private struct State {
        var waiters: [Waiter] = []
        var listener: CheckedContinuation<Void, Never>?
        /// Whether a session follows the directory now and can serve a request.
        var following = false
        var lastError: String?
    }

    private let state = Mutex(State())

    /// Asks for a complete read and waits for its outcome.
    ///
    /// - Throws: ``LDAPError`` `.unreachable` at once when the source is not connected.
    func request() async throws -> ReconcileOutcome {
        try await withCheckedThrowingContinuation { (waiter: Waiter) in
            let (listener, refusal) = state.withLock { state -> (CheckedContinuation<Void, Never>?, String?) in
                guard state.following else {
                    return (nil, state.lastError ?? "it has not connected yet")
                }
                state.waiters.append(waiter)
                defer { state.listener = nil }
                return (state.listener, nil)
            }
            if let refusal {
                waiter.resume(throwing: LDAPError(.unreachable, "the LDAP source is not connected: \(refusal)"))
            } else {
                listener?.resume()
            }
        }
    }

    /// Whether a request waits.
    var isPending: Bool { state.withLock { !$0.waiters.isEmpty } }

    /// Returns once a request waits (at once if one does), or when the task is cancelled.
    func waitForRequest() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (listener: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state -> Bool in
                    if !state.waiters.isEmpty || Task.isCancelled { return true }
                    state.listener = listener
                    return false
                }
                if now { listener.resume() }
            }
        } onCancel: {
            let listener = state.withLock { state -> CheckedContinuation<Void, Never>? in
                defer { state.listener = nil }
                return state.listener
            }
            listener?.resume()
        }
    }

    /// Takes the waiting requests; the caller resumes each with the read's outcome.
    func take() -> [Waiter] {
        state.withLock { state in
            defer { state.waiters = [] }
            return state.waiters
        }
    }

    /// Records whether a session can serve requests now; when it cannot, waiting requests fail.
    func setFollowing(_ following: Bool, error: String? = nil) {
        let dropped = state.withLock { state -> [Waiter] in
            state.following = following
            if let error { state.lastError = error }
            guard !following else { return [] }
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in dropped {
            waiter.resume(throwing: LDAPError(.unreachable, "the LDAP source lost its connection: \(error ?? "unknown")"))
        }
    }
}
