import Foundation
import Synchronization

/// One RFC 4533 refreshAndPersist search on its own connection, driven through libldap's
/// `ldap_sync_*` helpers: a refresh stage that ends when the server says it is done, then
/// a persist stage read one poll at a time.
public struct SyncReplSession: Sendable {
    /// The connection the search runs on; it belongs to this session alone.
    public let connection: LDAPConnection
    /// What is followed.
    public let request: LDAPSearchRequest
    /// How long a refresh may go without any message before it is abandoned.
    public let stallTimeout: Duration

    /// Creates a session over an open connection.
    public init(connection: LDAPConnection, request: LDAPSearchRequest, stallTimeout: Duration) {
        self.connection = connection
        self.request = request
        self.stallTimeout = stallTimeout
    }

    /// Runs the refresh stage from `cookie` (nil: initial content) and returns its messages:
    /// with `delivery`, those it did not hand on in batches while it ran.
    ///
    /// A watchdog breaks the connection when no message arrived for ``stallTimeout``, and
    /// cancellation breaks it at once; both end in an error, never in a partial success (what
    /// was delivered before the error is the caller's to drop).
    /// - Parameter progress: told the messages received so far, every `every` of them, on
    ///   the thread that reads them.
    public func refresh(
        from cookie: Data?, delivering delivery: SyncDelivery? = nil, reportingEvery every: Int = 1_000,
        progress report: (@Sendable (Int) -> Void)? = nil
    ) async throws -> [SyncMessage] {
        let counted: (@Sendable (UInt64) -> Void)? = if let report { { report(Int($0)) } } else { nil }
        let progress = SyncProgress(every: every, report: counted)
        let connection = connection
        let request = request
        let stallTimeout = stallTimeout
        let stalled = StallFlag()
        do {
            return try await withThrowingTaskGroup(of: [SyncMessage]?.self) { group in
                group.addTask {
                    try await withTaskCancellationHandler {
                        try await connection.startSync(request, cookie: cookie, progress: progress, delivery: delivery)
                    } onCancel: {
                        connection.interrupt()
                    }
                }
                group.addTask {
                    var seen: UInt64 = 0
                    while true {
                        try await Task.sleep(for: stallTimeout)
                        let now = progress.messages.withLock { $0 }
                        if now == seen {
                            stalled.set()
                            connection.interrupt()
                            return nil
                        }
                        seen = now
                    }
                }
                while let result = try await group.next() {
                    if let messages = result {
                        group.cancelAll()
                        return messages
                    }
                }
                throw CancellationError()
            }
        } catch where stalled.isSet {
            throw LDAPError(
                .timeout, "the syncrepl refresh of \(request.base) sent nothing for \(stallTimeout)", underlying: error)
        }
    }

    /// Waits up to a second for persist-stage messages; cancellation breaks the wait at once.
    public func poll() async throws -> [SyncMessage] {
        let connection = connection
        return try await withTaskCancellationHandler {
            try await connection.pollSync()
        } onCancel: {
            connection.interrupt()
        }
    }
}

/// Set by the refresh watchdog when it gave up on a silent server.
final class StallFlag: Sendable {
    private let flag = Mutex<Bool>(false)
    func set() { flag.withLock { $0 = true } }
    var isSet: Bool { flag.withLock { $0 } }
}
