import Synchronization

/// A test hook (test hooks on only): holds complete directory reads after a given page of
/// people until released, so a test sees a read in its middle without racing it. Armed at
/// start by `TETHER_TEST_HOLD_READ_AT_PAGE` or later by `/v1/debug/hold-read?page=N` (which
/// moves a held read on to page N); `/v1/debug/release-read` lets the read go on and disarms it.
package final class ReadHold: Sendable {
    private struct State {
        var page: Int?
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state: Mutex<State>

    /// Armed at `page` of people, or not armed.
    package init(page: Int?) {
        state = Mutex(State(page: page))
    }

    /// Holds reads after page `page` of people from now on; a read held at another page goes
    /// on to this one.
    func arm(page: Int) {
        let moved = state.withLock { state in
            state.page = page
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in moved { waiter.resume() }
    }

    /// Waits after page `page` of `search` when it is the held one, until ``release()``.
    func wait(search: String, page: Int) async {
        guard search == "users", state.withLock({ $0.page }) == page else { return }
        await withCheckedContinuation { continuation in
            let go = state.withLock { state -> Bool in
                guard state.page == page else { return true }
                state.waiters.append(continuation)
                return false
            }
            if go { continuation.resume() }
        }
    }

    /// Lets a held read go on; later reads are not held until armed again.
    func release() {
        let waiters = state.withLock { state in
            state.page = nil
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}
