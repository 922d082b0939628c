/// Names — normalised DNs, or the keys of entries — each with what a ``DirectoryModel``
/// knows of it: the slot of the person who has it, and (for DNs) the groups that list it as a
/// member.
///
/// One lookup answers both questions, so a person loaded by a complete read costs one probe
/// per name, where dictionaries cost a SipHash digest of the same 36 to 40-odd bytes for each
/// question and probes that compare whole keys. The table is open addressing with linear
/// probing; it keeps each name's 64-bit hash, so a probe compares strings only when the hashes
/// are equal. The hash is seeded per process, so a directory cannot choose names that collide.
struct NameIndex: Sendable {
    /// What the model knows of one name.
    struct Entry: Sendable {
        /// The slot of the person who has this name; -1 when nobody has it.
        var slot: Int32 = -1
        /// The groups that list this DN as a member.
        var groups: [GroupOrdinal] = []

        var isEmpty: Bool { slot < 0 && groups.isEmpty }
    }

    private static let seed = UInt64.random(in: .min ... .max)
    /// The slot of an id that holds no name, until it is reused.
    private static let freed = Int32.min

    /// By id: the name, its hash and its entry. An entry left empty frees its id for the next name.
    private var texts: [String] = []
    private var hashes: [UInt64] = []
    private var entries: [Entry] = []
    private var freeIDs: [Int32] = []
    /// Ids by bucket; -1 for an empty bucket. The count is a power of two.
    private var buckets: [Int32] = Array(repeating: -1, count: 16)
    /// Names held.
    private(set) var count = 0

    /// How many names the table holds before it grows.
    var capacity: Int { buckets.count * 3 / 4 }

    init() {}

    /// Makes room for `total` names without growing the table again.
    mutating func reserve(_ total: Int) {
        texts.reserveCapacity(total)
        hashes.reserveCapacity(total)
        entries.reserveCapacity(total)
        if total * 4 > buckets.count * 3 { rehash(minimumBuckets: total * 4 / 3 + 1) }
    }

    /// The entry of `dn`, if the index holds it.
    subscript(dn: String) -> Entry? {
        find(dn, hash: Self.hash(dn)).id.map { entries[Int($0)] }
    }

    /// The slot of the person who has the name `dn`, if any.
    func slot(of dn: String) -> Int? {
        guard let entry = self[dn], entry.slot >= 0 else { return nil }
        return Int(entry.slot)
    }

    /// Calls `body` with the entry of `dn`, made empty first if the index did not hold it;
    /// an entry left empty is removed.
    mutating func update<Result>(_ dn: String, _ body: (inout Entry) -> Result) -> Result {
        let hash = Self.hash(dn)
        let (found, bucket) = find(dn, hash: hash)
        let id = found ?? insert(dn, hash: hash, at: bucket)
        let result = body(&entries[Int(id)])
        if entries[Int(id)].isEmpty { remove(id) }
        return result
    }

    /// Every name with its entry, in no particular order.
    func forEach(_ body: (String, Entry) -> Void) {
        for bucket in buckets where bucket >= 0 { body(texts[Int(bucket)], entries[Int(bucket)]) }
    }

    // MARK: Table

    /// The id holding `dn`, or the empty bucket where it would go.
    private func find(_ dn: String, hash: UInt64) -> (id: Int32?, bucket: Int) {
        let mask = buckets.count - 1
        var bucket = Int(truncatingIfNeeded: hash) & mask
        while true {
            let id = buckets[bucket]
            if id < 0 { return (nil, bucket) }
            if hashes[Int(id)] == hash, texts[Int(id)] == dn { return (id, bucket) }
            bucket = (bucket + 1) & mask
        }
    }

    private mutating func insert(_ dn: String, hash: UInt64, at bucket: Int) -> Int32 {
        let id: Int32
        if let reused = freeIDs.popLast() {
            id = reused
            texts[Int(id)] = dn
            hashes[Int(id)] = hash
            entries[Int(id)] = Entry()
        } else {
            id = Int32(texts.count)
            texts.append(dn)
            hashes.append(hash)
            entries.append(Entry())
        }
        count += 1
        if count * 4 > buckets.count * 3 {
            rehash(minimumBuckets: buckets.count * 2)
        } else {
            buckets[bucket] = id
        }
        return id
    }

    /// Removes `id` from its bucket, moving later entries of the probe sequence back so
    /// that every lookup still finds them (no tombstones).
    private mutating func remove(_ id: Int32) {
        let mask = buckets.count - 1
        var hole = Int(truncatingIfNeeded: hashes[Int(id)]) & mask
        while buckets[hole] != id { hole = (hole + 1) & mask }
        var next = (hole + 1) & mask
        while buckets[next] >= 0 {
            let home = Int(truncatingIfNeeded: hashes[Int(buckets[next])]) & mask
            // The entry at `next` may fill the hole if its home is not cyclically in (hole, next].
            let distanceToNext = (next - home) & mask
            let distanceToHole = (hole - home) & mask
            if distanceToHole < distanceToNext {
                buckets[hole] = buckets[next]
                hole = next
            }
            next = (next + 1) & mask
        }
        buckets[hole] = -1
        texts[Int(id)] = ""
        entries[Int(id)] = Entry(slot: Self.freed)
        freeIDs.append(id)
        count -= 1
    }

    private mutating func rehash(minimumBuckets: Int) {
        var size = buckets.count
        while size < minimumBuckets { size *= 2 }
        var fresh = [Int32](repeating: -1, count: size)
        let mask = size - 1
        for id in texts.indices where entries[id].slot != Self.freed {
            var bucket = Int(truncatingIfNeeded: hashes[id]) & mask
            while fresh[bucket] >= 0 { bucket = (bucket + 1) & mask }
            fresh[bucket] = Int32(id)
        }
        buckets = fresh
    }

    /// The name's hash: 8 bytes at a time, multiplied and folded, then mixed (SplitMix64's
    /// finaliser), from the process's seed.
    static func hash(_ dn: String) -> UInt64 {
        var dn = dn
        return dn.withUTF8 { bytes in
            let raw = UnsafeRawBufferPointer(bytes)
            var state = seed ^ (UInt64(raw.count) &* 0x9E37_79B9_7F4A_7C15)
            var offset = 0
            while offset + 8 <= raw.count {
                state = (state ^ raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) &* 0xBF58_476D_1CE4_E5B9
                state ^= state >> 31
                offset += 8
            }
            var tail: UInt64 = 0
            var shift: UInt64 = 0
            while offset < raw.count {
                tail |= UInt64(raw[offset]) << shift
                shift += 8
                offset += 1
            }
            state = (state ^ tail) &* 0x94D0_49BB_1331_11EB
            state ^= state >> 30
            state = state &* 0xBF58_476D_1CE4_E5B9
            state ^= state >> 27
            state = state &* 0x94D0_49BB_1331_11EB
            return state ^ (state >> 31)
        }
    }
}
