import Synchronization

/// Which allowed checks the decision log records (`check.log.allows`); denies are always
/// recorded.
public enum AllowLogging: Sendable, Hashable, CustomStringConvertible {
    /// Every allow.
    case all
    /// One allow in `n` (the first, then every n-th).
    case sample(Int)
    /// No allow.
    case none

    public var description: String {
        switch self {
        case .all: "all"
        case .sample(let n): "sample \(n)"
        case .none: "none"
        }
    }
}

/// The bounded queue between `/v1/check` and the decision log's writer (SPEC §16).
///
/// The request path only appends, under a lock held for one array append, and never waits:
/// when the queue holds `capacity` decisions the new one is dropped and counted. The writer
/// takes everything queued at once and waits for more with ``waitForDecisions()``.
public final class DecisionQueue: Sendable {
    struct State {
        var queued: [DecisionRecord] = []
        /// Whether the writer is waiting for decisions and must be woken.
        var writerWaiting = false
    }

    /// The most decisions held at once.
    public let capacity: Int
    /// Which allows are recorded.
    public let allows: AllowLogging
    private let state = Mutex(State())
    private let allowsSeen = Atomic<Int>(0)
    private let droppedTotal = Atomic<Int>(0)
    private let droppedUnreported = Atomic<Int>(0)
    private let wake: AsyncStream<Void>.Continuation
    private let wakes: AsyncStream<Void>

    /// Called, off any lock, with the number of decisions dropped each time some are.
    private let onDrop: @Sendable (Int) -> Void

    public init(capacity: Int, allows: AllowLogging = .all, onDrop: @escaping @Sendable (Int) -> Void = { _ in }) {
        precondition(capacity > 0, "a decision queue holds at least one decision")
        self.capacity = capacity
        self.allows = allows
        self.onDrop = onDrop
        (wakes, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Queues `decision` if the log records it (denies always, allows per ``allows``) and the
    /// queue has room; never waits. Returns whether it was queued.
    @discardableResult
    public func record(_ decision: DecisionRecord) -> Bool {
        if decision.allowed {
            switch allows {
            case .all: break
            case .none: return false
            case .sample(let n):
                guard allowsSeen.wrappingAdd(1, ordering: .relaxed).oldValue % n == 0 else { return false }
            }
        }
        let (queued, wakeWriter) = state.withLock { state -> (Bool, Bool) in
            guard state.queued.count < capacity else { return (false, false) }
            state.queued.append(decision)
            let wakeWriter = state.writerWaiting
            state.writerWaiting = false
            return (true, wakeWriter)
        }
        if wakeWriter { wake.yield() }
        if !queued {
            droppedTotal.add(1, ordering: .relaxed)
            droppedUnreported.add(1, ordering: .relaxed)
            onDrop(1)
        }
        return queued
    }

    /// Everything queued, oldest first, leaving the queue empty.
    ///
    /// The writer runs at a low priority: the lock is held for a swap only, so that it is never
    /// preempted holding what the checks need. The new queue's room is allocated before.
    public func takeAll() -> [DecisionRecord] {
        var taken: [DecisionRecord] = []
        taken.reserveCapacity(Swift.min(Swift.max(count, 1_024), capacity))
        state.withLock { state in swap(&taken, &state.queued) }
        return taken
    }

    /// How many decisions wait.
    public var count: Int { state.withLock { $0.queued.count } }

    /// Returns once a decision is queued (at once if one is), or when the task is cancelled
    /// or ``finish()`` was called. Suspends; never blocks a thread.
    public func waitForDecisions() async {
        let empty = state.withLock { state in
            state.writerWaiting = state.queued.isEmpty
            return state.queued.isEmpty
        }
        guard empty else { return }
        var iterator = wakes.makeAsyncIterator()
        _ = await iterator.next()
    }

    /// Wakes a writer waiting in ``waitForDecisions()`` for good: it returns at once from now on.
    public func finish() { wake.finish() }

    /// Decisions dropped since the queue was made.
    public var dropped: Int { droppedTotal.load(ordering: .relaxed) }

    /// Decisions dropped since the last call, taken: what the next `decisions.dropped` audit
    /// record reports.
    public func takeUnreportedDrops() -> Int { droppedUnreported.exchange(0, ordering: .relaxed) }

    /// Counts `count` decisions as dropped after they left the queue (a batch the writer could
    /// not store); with `reported: false`, drops taken for an audit record that failed, put back.
    public func countDropped(_ count: Int, reported: Bool = true) {
        droppedUnreported.add(count, ordering: .relaxed)
        guard reported else { return }
        droppedTotal.add(count, ordering: .relaxed)
        onDrop(count)
    }
}
