import Testing
import TetherCore

@Suite struct GrantKeyTableTests {
    static func key(_ n: UInt64) -> GrantKey { GrantKey(high: n &* 0x9e37_79b9_7f4a_7c15, low: n) }

    @Test func holdsEveryKeyItWasGivenOnceThroughGrowthAndFindsNoOther() {
        var table = GrantKeyTable()
        for n in 1...5_000 as ClosedRange<UInt64> { table.insert(Self.key(n)) }
        // Again: nothing is counted twice.
        for n in 1...5_000 as ClosedRange<UInt64> { table.insert(Self.key(n)) }
        #expect(table.count == 5_000)
        #expect(Set(table.keys) == Set((1...5_000).map(Self.key)))
        #expect((1...5_000).allSatisfy { table.contains(Self.key($0)) })
        #expect(!(5_001...10_000).contains { table.contains(Self.key($0)) })
        // Distinct keys have distinct slots, all within the bit set's range.
        let slots = (1...5_000).compactMap { table.slot(of: Self.key($0)) }
        #expect(Set(slots).count == 5_000 && slots.allSatisfy { $0 < table.slotCount })
    }

    @Test func theAllZeroKeyIsAKeyLikeAnyOther() {
        var table: GrantKeyTable = [Self.key(1)]
        #expect(!table.contains(GrantKey(high: 0, low: 0)))
        table.insert(GrantKey(high: 0, low: 0))
        table.insert(GrantKey(high: 0, low: 0))
        #expect(table.count == 2 && table.contains(GrantKey(high: 0, low: 0)))
        var marked = SlotBits(slots: table.slotCount)
        marked.insert(table.slot(of: Self.key(1))!)
        #expect(table.keys(notMarkedIn: marked) == [GrantKey(high: 0, low: 0)])
        marked.insert(table.slot(of: GrantKey(high: 0, low: 0))!)
        #expect(table.keys(notMarkedIn: marked).isEmpty && marked.count == 2)
    }

    @Test func keysThatShareTheirLowBitsStillFindTheirOwnSlots() {
        // Keys crafted to agree on the bits a plain table would place them by.
        let crafted = (0..<2_000).map { GrantKey(high: UInt64($0) + 1, low: 0x1000_0000 | 7) }
        let table = GrantKeyTable(crafted)
        #expect(table.count == 2_000)
        #expect(crafted.allSatisfy(table.contains))
    }

    @Test func bitsSetInPartsUniteToTheWhole() {
        var a = SlotBits(slots: 200)
        var b = SlotBits(slots: 200)
        #expect(a.insert(3) && !a.insert(3))
        b.insert(3)
        b.insert(130)
        b.insert(199)
        a.formUnion(b)
        #expect(a.count == 3 && a[3] && a[130] && a[199] && !a[4])
    }
}
