import Foundation
import Synchronization
import Testing
import TetherCore

/// The decision log's queue (SPEC §16): bounded, never waiting, sampling allows, and the
/// decision's id and JSON line.
@Suite struct DecisionQueueTests {
    static func decision(_ subject: String = "jdoe", allowed: Bool = true, time: Date = Date()) -> DecisionRecord {
        DecisionRecord(
            id: DecisionID.next(at: time), time: time, subject: subject, agent: "copilot", scope: "read", resource: "r",
            allowed: allowed, grant: allowed ? "g_1" : nil, policy: allowed ? "p" : nil, policySet: "ps", revision: 3, caller: "c")
    }

    @Test func aFullQueueDropsAndCountsWithoutWaiting() {
        let dropped = DropCount()
        let queue = DecisionQueue(capacity: 3, onDrop: { dropped.add($0) })
        let results = (0..<5).map { queue.record(Self.decision("s\($0)")) }
        #expect(results == [true, true, true, false, false])
        #expect(queue.count == 3 && queue.dropped == 2 && dropped.value == 2)
        #expect(queue.takeAll().map(\.subject) == ["s0", "s1", "s2"], "oldest first")
        #expect(queue.count == 0)
        #expect(queue.record(Self.decision("s5")), "room again once taken")
        #expect(queue.takeUnreportedDrops() == 2 && queue.takeUnreportedDrops() == 0)
    }

    @Test func allowsAreSampledAndDeniesAlwaysRecorded() {
        let sampled = DecisionQueue(capacity: 100, allows: .sample(4))
        for _ in 0..<10 { sampled.record(Self.decision(allowed: true)) }
        for _ in 0..<3 { sampled.record(Self.decision(allowed: false)) }
        let taken = sampled.takeAll()
        #expect(taken.filter(\.allowed).count == 3, "the 1st, 5th and 9th allow")
        #expect(taken.filter { !$0.allowed }.count == 3)
        let none = DecisionQueue(capacity: 100, allows: .none)
        #expect(!none.record(Self.decision(allowed: true)) && none.record(Self.decision(allowed: false)))
        #expect(none.dropped == 0, "an allow not recorded by choice is not a drop")
    }

    @Test func theWriterWaitsForDecisionsWithoutBlocking() async {
        let queue = DecisionQueue(capacity: 4)
        queue.record(Self.decision())
        await queue.waitForDecisions()  // one is queued: returns at once
        _ = queue.takeAll()
        async let woken: Void = queue.waitForDecisions()
        while queue.count == 0 {
            queue.record(Self.decision())
            await Task.yield()
        }
        await woken
        #expect(queue.count >= 1)
    }

    @Test func idsCarryTheirMillisecondAndParseBack() throws {
        let time = Date(timeIntervalSince1970: 1_795_000_000.123)
        let id = DecisionID.next(at: time)
        #expect(id.hasPrefix("d_") && id.count == 34)
        let parsed = try #require(DecisionID.parse(id))
        #expect(parsed.milliseconds == 1_795_000_000_123 && parsed.nonce.count == 10)
        #expect(DecisionID.next(at: time) != id)
        #expect(DecisionID.parse("d_xyz") == nil && DecisionID.parse("g_" + String(repeating: "0", count: 32)) == nil)
    }

    @Test func idsMadeAtOnceOnManyThreadsAreAllDistinctAndScattered() async throws {
        let time = Date(timeIntervalSince1970: 1_795_000_000.123)
        let ids = await withTaskGroup(of: [String].self) { group in
            for _ in 0..<8 { group.addTask { (0..<5_000).map { _ in DecisionID.next(at: time) } } }
            return await group.reduce(into: [String]()) { $0 += $1 }
        }
        #expect(Set(ids).count == ids.count)
        // Made from a counter, they must still not read as one: consecutive ids differ in
        // most of their last 16 digits.
        let tails = ids.prefix(1_000).map { $0.suffix(16) }
        let neighbours = zip(tails, tails.dropFirst()).filter { pair in
            zip(pair.0, pair.1).filter { $0 != $1 }.count >= 8
        }
        #expect(neighbours.count > 990)
        let bits = try #require(DecisionID.bits(ids[0]))
        #expect(Int64(bitPattern: bits.high >> 16) == 1_795_000_000_123)
    }

    @Test func theJSONLineHasItsKeysSortedAndLeavesOutAGrantForADeny() throws {
        let time = Date(timeIntervalSince1970: 1_795_000_000.5)
        var decision = Self.decision(time: time)
        decision.resource = "repo:\"quoted\""
        let line = decision.line
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        let sorted = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        #expect(line == String(decoding: sorted, as: UTF8.self))
        #expect(object["time"] as? String == "2026-11-18T11:06:40.500Z" && object["revision"] as? Int == 3)
        #expect(object["resource"] as? String == "repo:\"quoted\"")
        let deny = Self.decision(allowed: false).line
        #expect(!deny.contains("\"grant\"") && !deny.contains("\"policy\"") && deny.contains("\"allowed\":false"))
    }
}

final class DropCount: Sendable {
    private let count = Mutex(0)
    func add(_ n: Int) { count.withLock { $0 += n } }
    var value: Int { count.withLock { $0 } }
}
