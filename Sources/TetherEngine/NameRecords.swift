import TetherCore

/// The identity records that carry one userName, with their statuses: one almost always, more
/// after a rehire. Held inline for the one record, so the check index keeps no dictionary per
/// person (24 MiB at 100,000 people).
enum NameRecords: Sendable, Equatable {
    case one(IdentityID, IdentityStatus)
    case several([IdentityID: IdentityStatus])

    /// The records of `statuses`; nil when there are none.
    init?(_ statuses: [IdentityID: IdentityStatus]) {
        switch statuses.count {
        case 0: return nil
        case 1: self = .one(statuses.first!.key, statuses.first!.value)
        default: self = .several(statuses)
        }
    }

    var ids: [IdentityID] {
        switch self {
        case .one(let id, _): [id]
        case .several(let records): Array(records.keys)
        }
    }

    /// The status a check sees: active when any record is, else suspended when any is.
    var status: IdentityStatus {
        switch self {
        case .one(_, let status): status
        case .several(let records):
            records.values.contains(.active) ? .active : records.values.contains(.suspended) ? .suspended : .terminated
        }
    }

    /// `records` with `id` at `status`.
    static func setting(_ id: IdentityID, _ status: IdentityStatus, in records: NameRecords?) -> NameRecords {
        switch records {
        case nil: return .one(id, status)
        case .one(let only, _) where only == id: return .one(id, status)
        case .one(let other, let otherStatus): return .several([other: otherStatus, id: status])
        case .several(var all):
            all[id] = status
            return .several(all)
        }
    }

    /// `records` without `id`; nil when none is left.
    static func removing(_ id: IdentityID, from records: NameRecords?) -> NameRecords? {
        switch records {
        case nil: return nil
        case .one(let only, _): return only == id ? nil : records
        case .several(var all):
            all[id] = nil
            return NameRecords(all)
        }
    }
}
