import Foundation
import Testing
import TetherCore
import TetherStore
#if canImport(Glibc)
import Glibc
#endif

/// `kill -9` at any moment loses nothing (SPEC §12): after each restart the grants equal the
/// desired state, the audit chain verifies, and accepted scheduled leavers are kept.
@Suite(.serialized) struct CrashRecoveryTests {
    /// Rounds in the suite; `TETHER_KILL_ROUNDS` raises it for a longer run.
    static let rounds = ProcessInfo.processInfo.environment["TETHER_KILL_ROUNDS"].flatMap(Int.init) ?? 30

    @Test func killNineAtRandomMomentsDuringEventStreams() async throws {
        let daemon = try await OperatorCLITests.start()
        defer { daemon.stop() }
        #expect(try await daemon.cli(["ingest", "-"], input: Data(HREventLines.joiners(OperatorCLITests.staff).utf8)).code == 0)
        let store = try SQLiteStateStore(path: daemon.folder.appendingPathComponent("state/tether.db").path)
        var random = SystemRandomNumberGenerator()
        var occurred = Date()
        var passed = 0
        var lastSeq = 0
        defer { print("CrashRecoveryTests: \(passed)/\(Self.rounds) rounds passed") }

        for round in 0..<Self.rounds {
            // A stream of joiners, leavers and leavers scheduled for tomorrow.
            var stream = ""
            for index in 0..<120 {
                let number = 10_000 + round * 1_000 + index
                occurred = occurred.addingTimeInterval(0.001)
                stream += HREventLines.event("evt-\(round)-\(index)", "joiner", user: "u\(number)", employeeNumber: number, occurredAt: occurred) + "\n"
                switch index % 4 {
                case 0:
                    occurred = occurred.addingTimeInterval(0.001)
                    stream += HREventLines.event("evt-\(round)-\(index)-l", "leaver", user: "u\(number)", employeeNumber: number, occurredAt: occurred) + "\n"
                case 1:
                    occurred = occurred.addingTimeInterval(0.001)
                    stream += HREventLines.event(
                        "evt-\(round)-\(index)-s", "leaver", user: "u\(number)", employeeNumber: number, occurredAt: occurred,
                        effectiveAt: Date().addingTimeInterval(86_400)) + "\n"
                default: break
                }
            }
            // Only the records added since the last round are read: long runs stay linear.
            lastSeq = try await store.auditRecords(AuditQuery(afterSeq: lastSeq)).last?.seq ?? lastSeq
            let killAt = lastSeq + Int.random(in: 1...300, using: &random)
            let feeder = Task.detached { try? await daemon.cli(["ingest", "-"], input: Data(stream.utf8)) }
            // Kill once the audit log has grown past a random point: mid-commit is fair game.
            _ = try await eventually(timeout: 30) { try await store.auditRecords(AuditQuery(afterSeq: killAt - 1, limit: 1)).count > 0 }
            let scheduledBefore = try await store.scheduledLeavers(dueBy: nil).count
            daemon.signal(SIGKILL)
            _ = await daemon.waitForExit()
            _ = await feeder.value

            try daemon.launch()
            try await daemon.waitUntilReady()
            let planned = try await daemon.cli(["plan", "--json"])
            let steps = (OperatorCLITests.json(planned.stdout) as? [String: Any])?["steps"] as? [Any]
            #expect(steps?.isEmpty == true, "round \(round): grants differ from the desired state: \(planned.stdout) \(planned.stderr)")
            let verify = try await daemon.cli(["audit", "verify"])
            #expect(verify.code == 0, "round \(round): \(verify.stdout)")
            #expect(try await store.scheduledLeavers(dueBy: nil).count >= scheduledBefore, "round \(round): a scheduled leaver was lost")
            let active = Set(try await store.identities(status: .active).map(\.userName))
            for grant in try await store.grants(subject: nil, agent: nil) where !active.contains(grant.grant.subject) {
                Issue.record("round \(round): \(grant.grant) is held by someone not active")
            }
            if steps?.isEmpty != true || verify.code != 0 { return }
            passed += 1
        }
    }
}
