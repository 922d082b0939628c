import PropertyInput
import Testing

@testable import TetherLDAP

/// The DN index against a dictionary doing the same: whatever is set, appended, cleared and
/// removed, every DN finds its entry, and only non-empty entries are kept.
@Suite("Name index")
struct NameIndexTests {
    struct Expected: Equatable {
        var slot: Int32 = -1
        var groups: [GroupOrdinal] = []
    }

    @Test("random changes to a few hundred DNs leave the index equal to a dictionary")
    func matchesADictionary() {
        let seed = propertySeed("NameIndex")
        var random = SeededRandom(seed: seed)
        var failures = PropertyFailures(seed: seed)
        // Short, long, empty, non-ASCII, and DNs alike but for their last byte, so that
        // probes run into each other.
        var pool = ["", "a", "uid=ø", "cn=ünïcode,ou=groups,dc=example,dc=com"]
        for number in 0..<300 { pool.append("uid=user\(number),ou=people,dc=example,dc=com") }
        for number in 0..<40 { pool.append(String(repeating: "x", count: number)) }
        var index = NameIndex()
        var expected: [String: Expected] = [:]
        for step in 0..<20_000 {
            let dn = random.pick(pool)
            var want = expected[dn] ?? Expected()
            switch random.below(6) {
            case 0, 1:
                let slot = Int32(random.below(1_000))
                index.update(dn) { $0.slot = slot }
                want.slot = slot
            case 2:
                index.update(dn) { $0.slot = -1 }
                want.slot = -1
            case 3:
                let ordinal = GroupOrdinal(random.below(50))
                index.update(dn) { $0.groups.append(ordinal) }
                want.groups.append(ordinal)
            case 4:
                let ordinal = want.groups.isEmpty ? 0 : want.groups[random.below(want.groups.count)]
                index.update(dn) { $0.groups.removeAll { $0 == ordinal } }
                want.groups.removeAll { $0 == ordinal }
            default:
                let returned = index.update(dn) { entry in
                    defer { entry.groups = [] }
                    return entry.groups
                }
                failures.check(returned == want.groups, "step \(step): cleared \(dn) returned \(returned)")
                want.groups = []
            }
            expected[dn] = want.slot < 0 && want.groups.isEmpty ? nil : want
            if random.chance(1) { index.reserve(random.below(2_000)) }

            let got = index[dn].map { Expected(slot: $0.slot, groups: $0.groups) }
            failures.check(got == expected[dn], "step \(step): \(dn) holds \(String(describing: got))")
            failures.check(index.count == expected.count, "step \(step): \(index.count) DNs, expected \(expected.count)")
            if step % 500 == 0 {
                for other in pool {
                    let held = index[other].map { Expected(slot: $0.slot, groups: $0.groups) }
                    failures.check(held == expected[other], "step \(step): \(other) holds \(String(describing: held))")
                    let slot = expected[other].flatMap { $0.slot >= 0 ? Int($0.slot) : nil }
                    failures.check(index.slot(of: other) == slot, "step \(step): slot of \(other)")
                }
                var listed: [String: Expected] = [:]
                index.forEach { dn, entry in listed[dn] = Expected(slot: entry.slot, groups: entry.groups) }
                failures.check(listed == expected, "step \(step): forEach lists \(listed.count) DNs")
            }
        }
        failures.finish("NameIndex: 20,000 changes to \(pool.count) DNs")
    }

    @Test("a DN's hash depends on every byte")
    func hashCoversEveryByte() {
        let base = Array("uid=user12345,ou=people,dc=example,dc=com".utf8)
        var seen: Set<UInt64> = [NameIndex.hash(String(decoding: base, as: UTF8.self))]
        for position in base.indices {
            var changed = base
            changed[position] ^= 0x01
            seen.insert(NameIndex.hash(String(decoding: changed, as: UTF8.self)))
        }
        #expect(seen.count == base.count + 1)
        #expect(NameIndex.hash("ab") != NameIndex.hash("ab\u{0}"), "a trailing zero byte changes nothing")
    }
}
