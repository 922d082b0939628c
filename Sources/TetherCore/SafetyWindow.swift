import Foundation

/// The revocations one source caused lately, counted by the sliding window (SPEC §6,
/// `safety.window`), so that a mass deletion streamed as single changes meets the same
/// limits as one complete read that shrank.
///
/// What counts: every `grant.revoked` a source's own changes commit — directory entries and
/// deletions, complete reads, HR and SCIM events (explicit leavers included), scheduled
/// leavers (they count for `hr`). Revocations an operator approves, a reload or timer
/// reconciliation commits, or an operator's own change are not the source's doing and do
/// not count. Revocations held for approval do not count either: they have not happened.
///
/// Pure: the caller passes the time, read from the injected clock.
public struct RevocationWindow: Sendable, Hashable, Codable {
    /// The revocations committed at one time.
    public struct Entry: Sendable, Hashable, Codable {
        public var time: Date
        public var revocations: Int

        public init(time: Date, revocations: Int) {
            self.time = time
            self.revocations = revocations
        }
    }

    /// Oldest first.
    public private(set) var entries: [Entry]

    public init(entries: [Entry] = []) { self.entries = entries.sorted { $0.time < $1.time } }

    /// The revocations still inside the window.
    public var revocations: Int { entries.reduce(0) { $0 + $1.revocations } }

    /// The window as it stands at `now`: entries older than `length` seconds have left it.
    /// An entry exactly `length` old has left; one stamped after `now` (a clock set back) stays.
    public func at(_ now: Date, length: TimeInterval) -> RevocationWindow {
        let start = now - length
        return RevocationWindow(entries: entries.filter { $0.time > start })
    }

    /// Counts `revocations` committed at `time`.
    ///
    /// - Parameter granularity: revocations in the same slot of this many seconds (counted
    ///   from the epoch) as the latest entry join it, stamped with the later time, so the
    ///   window holds a bounded number of entries (it is stored with every commit that
    ///   revokes) whatever the rate of changes. Merging only ever keeps a revocation counted a
    ///   little longer (less than `granularity`), never shorter.
    public mutating func record(_ revocations: Int, at time: Date, granularity: TimeInterval = 0) {
        guard revocations > 0 else { return }
        if granularity > 0, let last = entries.last, time >= last.time,
            (time.timeIntervalSince1970 / granularity).rounded(.down) == (last.time.timeIntervalSince1970 / granularity).rounded(.down)
        {
            entries[entries.count - 1] = Entry(time: time, revocations: last.revocations + revocations)
            return
        }
        entries.append(Entry(time: time, revocations: revocations))
        entries.sort { $0.time < $1.time }
    }
}

extension SafetyLimits {
    /// Why `adding` more revocations from `source` breaks its window's budget, or nil when
    /// they fit.
    ///
    /// The count is the window's revocations plus `adding`. The ratio's denominator is the
    /// grants in force now plus the window's revocations: the grants there were before the
    /// window's revocations began (grants added meanwhile aside), so that streaming the
    /// deletions one by one does not shrink the base each one is measured against. The ratio
    /// applies from `minGrantsForRatio` grants in that denominator, as for one plan.
    /// - Parameters:
    ///   - window: the source's window as it stands now (see ``RevocationWindow/at(_:length:)``).
    ///   - existingGrants: the grants in the store now.
    public func windowExceeded(
        adding revocations: Int, to window: RevocationWindow, existingGrants: Int, source: Source
    ) -> String? {
        guard revocations > 0 else { return nil }
        let counted = window.revocations
        let total = counted + revocations
        let span = "within \(DurationText.string(self.window))"
        if total > maxRevocationsPerRun {
            return "\(source.rawValue) revoked \(counted) grants \(span); \(revocations) more would make \(total), "
                + "more than maxRevocationsPerRun \(maxRevocationsPerRun)"
        }
        let base = existingGrants + counted
        if base >= minGrantsForRatio, base > 0 {
            let ratio = Double(total) / Double(base)
            if ratio > maxRevocationRatio {
                let percent = (ratio * 1000).rounded() / 10
                return "\(source.rawValue) revoked \(counted) grants \(span); \(revocations) more would make \(total) of \(base) "
                    + "(\(percent)%), more than maxRevocationRatio \(maxRevocationRatio)"
            }
        }
        return nil
    }
}
