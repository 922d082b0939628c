/// The keys of every grant in the store, in an open-addressed table: what a full
/// reconciliation asks of each grant it derives ("does it exist?"). Each key has a slot, so
/// which of them are desired is a bit per slot (``DesiredDiff``), not a second set of keys: at
/// a million grants, 32 MiB in all instead of two sets and their growth.
public struct GrantKeyTable: Sendable, ExpressibleByArrayLiteral {
    /// Keys by slot; ``GrantKey/empty`` marks a free slot (that key itself is held aside).
    private var slots: [GrantKey]
    private var holdsEmptyKey = false
    /// Mixed into each key's slot, so that keys cannot be made to share slots.
    private let seed: Int
    /// How many keys the table holds.
    public private(set) var count = 0

    /// A table sized for `capacity` keys.
    public init(capacity: Int = 0) {
        slots = Array(repeating: .empty, count: Self.size(for: capacity))
        seed = Int.random(in: .min ... .max)
    }

    public init(_ keys: some Sequence<GrantKey>) {
        self.init(capacity: keys.underestimatedCount)
        for key in keys { insert(key) }
    }

    public init(arrayLiteral keys: GrantKey...) { self.init(keys) }

    /// Slots a bit set over the table needs: one per slot, and one for the empty key.
    public var slotCount: Int { slots.count + 1 }

    /// Every key, in slot order.
    public var keys: [GrantKey] {
        var keys = slots.filter { $0 != .empty }
        if holdsEmptyKey { keys.append(.empty) }
        return keys
    }

    public mutating func insert(_ key: GrantKey) {
        if key == .empty {
            if !holdsEmptyKey { count += 1 }
            holdsEmptyKey = true
            return
        }
        // At most three quarters full: probes stay short.
        if (count + 1) * 4 > slots.count * 3 { grow() }
        var slot = self.start(key)
        while slots[slot] != .empty {
            if slots[slot] == key { return }
            slot = (slot + 1) & (slots.count - 1)
        }
        slots[slot] = key
        count += 1
    }

    /// The slot of `key`, if the table holds it.
    public func slot(of key: GrantKey) -> Int? {
        if key == .empty { return holdsEmptyKey ? slots.count : nil }
        var slot = start(key)
        while true {
            let found = slots[slot]
            if found == key { return slot }
            if found == .empty { return nil }
            slot = (slot + 1) & (slots.count - 1)
        }
    }

    public func contains(_ key: GrantKey) -> Bool { slot(of: key) != nil }

    /// The keys whose slot `marked` leaves unset.
    public func keys(notMarkedIn marked: SlotBits) -> [GrantKey] {
        var keys: [GrantKey] = []
        for (slot, key) in slots.enumerated() where key != .empty && !marked[slot] { keys.append(key) }
        if holdsEmptyKey, !marked[slots.count] { keys.append(.empty) }
        return keys
    }

    /// Where `key`'s probe starts: its bits mixed with the seed as sets and dictionaries mix them.
    private func start(_ key: GrantKey) -> Int { key._rawHashValue(seed: seed) & (slots.count - 1) }

    private mutating func grow() {
        let old = slots
        slots = Array(repeating: .empty, count: old.count * 2)
        let hadEmptyKey = holdsEmptyKey
        count = 0
        for key in old where key != .empty { insert(key) }
        if hadEmptyKey { count += 1 }
    }

    private static func size(for capacity: Int) -> Int {
        var size = 16
        while size * 3 < capacity * 4 { size *= 2 }
        return size
    }
}

/// One bit per slot of a ``GrantKeyTable``.
public struct SlotBits: Sendable {
    private var words: [UInt64]
    /// How many bits are set.
    public private(set) var count = 0

    public init(slots: Int) { words = Array(repeating: 0, count: (slots + 63) / 64) }

    public subscript(slot: Int) -> Bool { words[slot >> 6] & (1 << UInt64(slot & 63)) != 0 }

    /// Sets the bit of `slot`; true when it was not set.
    @discardableResult
    public mutating func insert(_ slot: Int) -> Bool {
        let bit: UInt64 = 1 << UInt64(slot & 63)
        guard words[slot >> 6] & bit == 0 else { return false }
        words[slot >> 6] |= bit
        count += 1
        return true
    }

    /// Sets every bit `other` sets.
    public mutating func formUnion(_ other: SlotBits) {
        count = 0
        for index in words.indices {
            words[index] |= other.words[index]
            count += words[index].nonzeroBitCount
        }
    }
}

extension GrantKey {
    /// All zero bits: marks a free slot (a grant with this key is held apart from the slots).
    static let empty = GrantKey(high: 0, low: 0)
}
