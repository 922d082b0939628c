import ArgumentParser
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Failover after `kill -9` of the leader (SPEC §14): kills it, then sends one leaver after
/// another to a surviving node until one is answered 200 — committed by the new leader. The
/// figure is the time from the kill to that answer.
struct Failover: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "failover", abstract: "Kills the leader and times the first commit through the node that takes over.")

    @Option(help: "The folder scripts/gen-workload wrote (hr.secret, workload.json).") var workload: String
    @Option(help: "A surviving node's HTTP port (127.0.0.1).") var port: UInt16
    @Option(help: "The leader's process id, killed with SIGKILL.") var leaderPid: Int32
    @Option(help: "The person who leaves (a team member no earlier run used).") var person: Int
    @Option(help: "Gives up after this many seconds.") var timeout = 120.0

    func run() async throws {
        let hr = try HRLeaver(workload: workload, runLabel: "failover-\(Int(Date().timeIntervalSince1970))")
        guard kill(leaderPid, SIGKILL) == 0 else { throw ValidationError("cannot kill \(leaderPid): \(String(cString: strerror(errno)))") }
        let killed = Stopwatch()
        var attempts = 0
        var refusals: [Int: Int] = [:]
        while killed.elapsed < .seconds(timeout) {
            attempts += 1
            // A new connection each time: a node may close one while the leader changes.
            if let client = try? LoopbackHTTP(port: port), let answer = try? hr.send(person: person, to: client) {
                if answer.status == 200 {
                    Report.line("failover.seconds", Report.seconds(killed.elapsed), note: "kill -9 of the leader → the new leader's first commit answered; budget ≤ 15 s")
                    Report.line("failover.attempts", "\(attempts)", note: "refused meanwhile: \(refusals.sorted { $0.key < $1.key }.map { "\($0.key)×\($0.value)" }.joined(separator: " "))")
                    return
                }
                refusals[answer.status, default: 0] += 1
            }
            // The pace of a client that was told to retry, not a synchronisation.
            try await Task.sleep(for: .milliseconds(20))
        }
        throw ValidationError("no node committed within \(Int(timeout)) s of the kill")
    }
}
