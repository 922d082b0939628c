import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Waits on child processes (the daemon, the CLI) hold no thread of the cooperative pool and
/// end at a deadline, so a child that never ends fails a test instead of hanging the run.
@Suite struct ChildExitTests {
    /// A child that never ends on its own.
    static func sleeper() throws -> (Process, ChildExit) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sleep")
        process.arguments = ["600"]
        let ended = ChildExit(process)
        try process.run()
        return (process, ended)
    }

    @Test func manyWaitsOnAChildLeaveThePoolFreeToEndIt() async throws {
        let (process, ended) = try Self.sleeper()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        // More waiters than the pool has threads: were each to hold one, the task that ends
        // the child could not run until their deadlines, and every wait would come back nil.
        let waiters = ProcessInfo.processInfo.activeProcessorCount * 4
        let statuses = await withTaskGroup(of: Int32?.self) { group in
            for _ in 0..<waiters { group.addTask { await ended.wait(timeout: .seconds(60)) } }
            group.addTask {
                kill(process.processIdentifier, SIGKILL)
                return nil
            }
            var statuses: [Int32?] = []
            for await status in group { statuses.append(status) }
            return statuses
        }
        #expect(statuses.filter { $0 == SIGKILL }.count == waiters, "\(statuses)")
        #expect(await ended.wait(timeout: .seconds(1)) == SIGKILL, "a wait after the end returns at once")
    }

    @Test func aWaitOnAChildThatDoesNotEndReturnsNilAtItsDeadline() async throws {
        let (process, ended) = try Self.sleeper()
        defer { kill(process.processIdentifier, SIGKILL) }
        #expect(await ended.wait(timeout: .milliseconds(200)) == nil)
        #expect(process.isRunning)
    }

    @Test func aCommandThatDoesNotEndIsKilledAndReportedAtItsDeadline() async throws {
        let started = ContinuousClock.now
        await #expect(throws: DaemonTestError.self) {
            try await DaemonProcess.run(["600"], executable: "/bin/sleep", timeout: 1)
        }
        #expect(ContinuousClock.now - started < .seconds(60))
    }
}
