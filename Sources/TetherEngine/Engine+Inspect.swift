import Synchronization
import TetherCore

extension Engine {
    /// Runs `decide` in one read transaction of the store (the inspect step), telling it when
    /// the task that runs it is cancelled: a long decision (a full reconciliation over a
    /// million grants) then stops early with `CancellationError`, and nothing is written.
    func inspectCancellably<T: Sendable>(
        _ decide: @escaping @Sendable (any DecisionReads, @escaping @Sendable () -> Bool) throws -> T
    ) async throws -> T {
        let flag = CancellationFlag()
        return try await withTaskCancellationHandler {
            try await store.inspect { reads in try decide(reads, { flag.isSet }) }
        } onCancel: {
            flag.set()
        }
    }
}

/// Set once, read from any thread: a cancelled task, as a decision running outside it sees it.
private final class CancellationFlag: Sendable {
    private let value = Atomic(false)

    var isSet: Bool { value.load(ordering: .relaxed) }

    func set() { value.store(true, ordering: .relaxed) }
}
