import Foundation
import GRDB
import TetherCore

/// The audit records of one commit, numbered from the head of the chain and sealed onto it.
///
/// The numbers are known as soon as the head is read, so the grants can cite their records
/// before those are written. A bulk commit (a cold start's million records) seals on another
/// thread, from the moment the batch is made, while the commit writes its identities and
/// grants; the records are then inserted as they come. The sealing thread runs at most
/// ``Sealing/Size/capacity`` records ahead, so a commit of ten million records holds tens of
/// thousands of sealed lines at a time, not ten million. The chain is the same either way.
struct AuditBatch {
    /// The seq of each granted grant's `grant.granted` record.
    let grantSeqs: [String: Int]
    private let entries: [AuditEntry]
    private let first: Int
    private let prev: String
    private let sealing: Sealing?
    private let size: Sealing.Size

    init(_ entries: [AuditEntry], in db: Database, concurrently: Bool, size: Sealing.Size = .init()) throws {
        self.entries = entries
        self.size = size
        var (seq, prev) = (0, AuditRecord.genesis)
        if !entries.isEmpty, let head = try Row.fetchOne(db.cachedStatement(sql: "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")) {
            seq = head["seq"]
            prev = head["hash"]
        }
        first = seq + 1
        self.prev = prev
        var grantSeqs: [String: Int] = [:]
        for (offset, entry) in entries.enumerated() where entry.action == .grantGranted {
            if let grant = entry.fields["grant"] { grantSeqs[grant] = first + offset }
        }
        self.grantSeqs = grantSeqs
        guard concurrently, !entries.isEmpty else {
            sealing = nil
            return
        }
        let sealing = Sealing(size)
        self.sealing = sealing
        let (first, head, chunk) = (first, prev, size.chunk)
        Thread.detachNewThread {
            Self.seal(entries, first: first, prev: head, inChunksOf: chunk) { _, sealed in sealing.put(sealed) }
            sealing.finish()
        }
    }

    /// Writes the records; returns the seqs written.
    func insert(in db: Database) throws -> ClosedRange<Int>? {
        guard !entries.isEmpty else { return nil }
        let statement = try db.cachedStatement(
            sql: """
                INSERT INTO audit (seq, hash, prev, action, actor, subject, agent, grantId, time, line)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
        var prev = self.prev
        var offset = 0
        func write(_ record: Sealed) throws {
            let entry = entries[offset]
            try statement.execute(arguments: [
                first + offset, record.hash, prev, entry.action.rawValue, entry.actor.description, entry.fields["subject"],
                entry.fields["agent"], entry.fields["grant"], record.time, record.line,
            ])
            prev = record.hash
            offset += 1
        }
        if let sealing {
            while let sealed = sealing.next() {
                for record in sealed { try write(record) }
            }
        } else {
            try Self.seal(entries, first: first, prev: prev, inChunksOf: size.chunk) { _, sealed in
                for record in sealed { try write(record) }
                return true
            }
        }
        return first...(first + entries.count - 1)
    }

    /// Stops the sealing thread, if it still runs: the commit ended (written, or failed before
    /// it took every record).
    func end() { sealing?.cancel() }

    /// The most records sealed ahead of the commit at once; nil when sealed in the commit.
    var mostSealedAhead: Int? { sealing?.mostAheadCount }

    struct Sealed: Sendable {
        var hash: String
        var line: String
        var time: String
    }

    /// Each entry's hash and line, the first numbered `first` and chained after `prev`.
    static func seal(_ entries: some Collection<AuditEntry>, first: Int, prev: String) -> [Sealed] {
        var sealed: [Sealed] = []
        sealed.reserveCapacity(entries.count)
        var prev = prev
        // The records of one commit share their time: it is written once.
        var written: (time: Date, text: String)?
        for (offset, entry) in entries.enumerated() {
            if written?.time != entry.time { written = (entry.time, SQLiteStateStore.time(entry.time)) }
            let text = written!.text
            let record = entry.sealedLine(seq: first + offset, prev: prev, time: text)
            sealed.append(Sealed(hash: record.hash, line: record.line, time: text))
            prev = record.hash
        }
        return sealed
    }

    /// Seals `entries` a chunk at a time, chained from (`first` - 1, `prev`), handing each chunk
    /// and the offsets it covers to `take` in order, until `take` says it wants no more: a
    /// commit of ten million records never holds them all sealed.
    static func seal(
        _ entries: [AuditEntry], first: Int, prev: String, inChunksOf chunk: Int,
        _ take: (Range<Int>, [Sealed]) throws -> Bool
    ) rethrows {
        var prev = prev
        for start in stride(from: 0, to: entries.count, by: chunk) {
            let range = start..<min(start + chunk, entries.count)
            let sealed = seal(entries[range], first: first + start, prev: prev)
            prev = sealed.last!.hash
            guard try take(range, sealed) else { return }
        }
    }

    /// The chunks of sealed records between the sealing thread and the commit, at most
    /// ``Size/capacity`` records ahead of the commit. Both sides wait on dedicated threads (the
    /// sealing thread's own, the store's writer), never on the cooperative pool.
    final class Sealing: @unchecked Sendable {
        struct Size {
            /// Records sealed and handed over at a time.
            var chunk = 2_048
            /// Records sealed ahead of the commit at most.
            var capacity = 65_536
        }

        private let size: Size
        private let condition = NSCondition()
        // Guarded by `condition`.
        private var chunks: [[Sealed]] = []
        private var finished = false
        private var cancelled = false
        /// The most records that waited sealed at once.
        private var mostAhead = 0

        init(_ size: Size) { self.size = size }

        /// Hands a chunk over, waiting while the commit is `capacity` records behind; false
        /// when the commit has ended and wants no more.
        func put(_ sealed: [Sealed]) -> Bool {
            condition.withLock {
                while chunks.count * size.chunk >= size.capacity && !cancelled { condition.wait() }
                guard !cancelled else { return false }
                chunks.append(sealed)
                mostAhead = max(mostAhead, chunks.reduce(0) { $0 + $1.count })
                condition.broadcast()
                return true
            }
        }

        /// The next chunk, waiting for it; nil once every chunk was taken.
        func next() -> [Sealed]? {
            condition.withLock {
                while chunks.isEmpty && !finished { condition.wait() }
                guard !chunks.isEmpty else { return nil }
                condition.broadcast()
                return chunks.removeFirst()
            }
        }

        var mostAheadCount: Int { condition.withLock { mostAhead } }

        /// Every record is sealed.
        func finish() {
            condition.withLock {
                finished = true
                condition.broadcast()
            }
        }

        /// The commit ended: the sealing thread stops at its next chunk.
        func cancel() {
            condition.withLock {
                cancelled = true
                condition.broadcast()
            }
        }
    }
}
