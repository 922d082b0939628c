/// Where polling an Active Directory domain controller resumes: the `highestCommittedUSN`
/// read before the last search, and the `invocationId` of the database that numbered it.
///
/// Update sequence numbers only describe changes of one database: a domain controller
/// restored from a backup gets a new invocationId and counts again from the backup's USN,
/// so changes made after the restore can carry numbers Tether has already passed. Either
/// sign drops the watermark, and the whole directory is read again (through the safety
/// gates) instead of polling from a number that no longer means anything.
struct USNWatermark: Sendable, Hashable {
    /// The highest USN the last search covered.
    var usn: Int64
    /// The domain controller's invocationId (a GUID, as text), when it could be read.
    var invocationId: String?

    /// What the next incremental poll does.
    enum Decision: Sendable, Hashable {
        /// Search for `uSNChanged >= from`, then resume from `next`.
        case poll(from: String, next: USNWatermark)
        /// Drop the watermark and read everything, for `reason`.
        case completeRead(reason: String)
    }

    /// A USN as a server wrote it: decimal digits only, within `Int64`; nil for anything
    /// else (negative, too large, garbage), so that no arithmetic on it can trap.
    static func parse(_ text: String?) -> Int64? {
        guard let text, !text.isEmpty, text.utf8.count <= 19, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
            return nil
        }
        return Int64(text)
    }

    /// What to do, now that the server reports `observedUSN` (as text, unparsed) and
    /// `observedInvocationId` (nil when it could not be read).
    func next(observedUSN text: String?, observedInvocationId: String?) -> Decision {
        if let invocationId, let observedInvocationId, invocationId != observedInvocationId {
            return .completeRead(
                reason: "the domain controller's invocationId changed from \(invocationId) to \(observedInvocationId), "
                    + "so it was restored from a backup and its update sequence numbers were reused")
        }
        guard let observed = Self.parse(text) else {
            return .completeRead(reason: "the domain controller reports an unreadable highestCommittedUSN (\(text ?? "none"))")
        }
        if observed < usn {
            return .completeRead(
                reason: "the domain controller's highestCommittedUSN went back from \(usn) to \(observed), "
                    + "so it was restored from a backup")
        }
        let (from, overflow) = usn.addingReportingOverflow(1)
        if overflow {
            return .completeRead(reason: "the USN watermark \(usn) is at the largest value Tether can count")
        }
        return .poll(from: String(from), next: USNWatermark(usn: observed, invocationId: observedInvocationId ?? invocationId))
    }
}
