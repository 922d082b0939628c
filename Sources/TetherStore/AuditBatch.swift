import Foundation
import GRDB
import Synchronization
import TetherCore

/// The audit records of one commit, numbered from the head of the chain and sealed onto it.
///
/// The numbers are known as soon as the head is read, so the grants can cite their records
/// before those are written. A bulk commit (a cold start's million records) seals on another
/// thread while the commit writes its identities and grants, then inserts the records: the
/// chain is the same, the second core does the hashing.
struct AuditBatch {
    /// The seq of each granted grant's `grant.granted` record.
    let grantSeqs: [String: Int]
    private let entries: [AuditEntry]
    private let first: Int
    private let prev: String
    private let sealing: Sealing

    init(_ entries: [AuditEntry], in db: Database, concurrently: Bool) throws {
        self.entries = entries
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
        let sealing = Sealing(started: concurrently && !entries.isEmpty)
        self.sealing = sealing
        if sealing.started {
            let (first, head) = (first, prev)
            Thread.detachNewThread { sealing.finish(Self.seal(entries, first: first, prev: head)) }
        }
    }

    /// Writes the records; returns the seqs written.
    func insert(in db: Database) throws -> ClosedRange<Int>? {
        guard !entries.isEmpty else { return nil }
        let sealed = sealing.wait() ?? Self.seal(entries, first: first, prev: prev)
        let statement = try db.cachedStatement(
            sql: """
                INSERT INTO audit (seq, hash, prev, action, actor, subject, agent, grantId, time, line)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """)
        var prev = self.prev
        for (offset, entry) in entries.enumerated() {
            let record = sealed[offset]
            try statement.execute(arguments: [
                first + offset, record.hash, prev, entry.action.rawValue, entry.actor.description, entry.fields["subject"],
                entry.fields["agent"], entry.fields["grant"], record.time, record.line,
            ])
            prev = record.hash
        }
        return first...(first + entries.count - 1)
    }

    struct Sealed: Sendable {
        var hash: String
        var line: String
        var time: String
    }

    /// Each entry's hash and line, the first numbered `first` and chained after `prev`.
    static func seal(_ entries: [AuditEntry], first: Int, prev: String) -> [Sealed] {
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

    /// The records sealed on another thread, once it is done; nil when none was started.
    final class Sealing: Sendable {
        let started: Bool
        private let result = Mutex<[Sealed]?>(nil)
        private let done = DispatchSemaphore(value: 0)

        init(started: Bool) { self.started = started }

        func finish(_ sealed: [Sealed]) {
            result.withLock { $0 = sealed }
            done.signal()
        }

        /// Waits for the other thread, if one was started.
        func wait() -> [Sealed]? {
            guard started else { return nil }
            done.wait()
            return result.withLock { $0 }
        }
    }
}
