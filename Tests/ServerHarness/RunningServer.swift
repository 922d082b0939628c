import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// A Hummingbird application a test runs as a double of a system it talks to, stopped the
/// way NIO requires: by a graceful shutdown.
///
/// Cancelling the server's task instead leaves a window in which a connection the kernel
/// already accepted is never handed to the server, and NIO traps on it ("Deinited
/// NIOAsyncWriter without calling finish()", swift-nio issue 3481): a daemon that connects to
/// the double just as a test stops it crashed the whole test process once.
public final class RunningServer: Sendable {
    private let task: Task<Void, any Error>
    private let group: ServiceGroup
    /// The port the server listens on.
    public let port: Int

    private init(task: Task<Void, any Error>, group: ServiceGroup, port: Int) {
        self.task = task
        self.group = group
        self.port = port
    }

    /// Runs the application `make` builds with the `onServerRunning` it is given, and returns
    /// once the server listens; nil when it could not listen (the port was taken).
    public static func start<App: ApplicationProtocol>(
        logger: Logger, _ make: (_ onServerRunning: @escaping @Sendable (any Channel) async -> Void) -> App
    ) async -> RunningServer? {
        let (ready, readyContinuation) = AsyncStream.makeStream(of: Int.self)
        let app = make { channel in
            readyContinuation.yield(channel.localAddress?.port ?? 0)
            readyContinuation.finish()
        }
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: logger))
        let task = Task {
            // A server that cannot listen ends at once; then `start` must not wait forever.
            defer { readyContinuation.finish() }
            try await group.run()
        }
        var ports = ready.makeAsyncIterator()
        guard let port = await ports.next(), port > 0 else {
            await group.triggerGracefulShutdown()
            _ = await task.result
            return nil
        }
        return RunningServer(task: task, group: group, port: port)
    }

    /// Stops accepting, lets each connection finish the request it is answering, and returns
    /// once the server has ended; a request still running after `patience` is cancelled.
    public func stop(patience: Duration = .seconds(10)) async {
        await group.triggerGracefulShutdown()
        let task = task
        let impatient = Task {
            try await Task.sleep(for: patience)
            task.cancel()
        }
        _ = await task.result
        impatient.cancel()
    }
}
