import Foundation

/// One answer of Active Directory's incremental retrieval of a multi-valued attribute: the
/// values of ``attribute`` from index ``low`` to ``high`` (nil: to the last, `*`).
///
/// A domain controller returns at most `MaxValRange` values of an attribute per search
/// (1,500 or 5,000). A group with more members comes back as `member;range=0-1499` and no
/// plain `member`, and the client asks for `member;range=1500-*`, and so on, until an answer
/// ends in `*`.
struct ValueRange: Sendable, Hashable {
    /// The attribute description without its range option, lowercased (`member`).
    var attribute: String
    /// The index of the first value in the answer.
    var low: Int
    /// The index of the last value, or nil when the answer holds the last value (`*`).
    var high: Int?

    /// Reads the range option of an attribute description as the server named it.
    ///
    /// - Returns: nil when the description has no range option.
    /// - Throws: ``LDAPError`` `.search` when it has one that is not `range=LOW-HIGH` or
    ///   `range=LOW-*` with `LOW <= HIGH` (or more than one): such an answer cannot say
    ///   which values it holds, so nothing read with it can be trusted.
    static func parse(_ description: String) throws -> ValueRange? {
        let options = description.split(separator: ";", omittingEmptySubsequences: false)
        let ranges = options.indices.dropFirst().filter { options[$0].lowercased().hasPrefix("range=") }
        guard let position = ranges.first else { return nil }
        func malformed(_ why: String) -> LDAPError {
            LDAPError(
                .search,
                "the server sent the attribute \"\(description)\", whose range option is malformed (\(why)); "
                    + "expected range=LOW-HIGH or range=LOW-*, as in member;range=1500-*")
        }
        guard ranges.count == 1 else { throw malformed("more than one range option") }
        let bounds = options[position].dropFirst("range=".count).split(separator: "-", omittingEmptySubsequences: false)
        guard bounds.count == 2 else { throw malformed("not two bounds separated by -") }
        guard let low = number(bounds[0]) else { throw malformed("the low bound is not a number") }
        var high: Int?
        if bounds[1] != "*" {
            guard let value = number(bounds[1]) else { throw malformed("the high bound is neither a number nor *") }
            guard value >= low else { throw malformed("the high bound is below the low one") }
            high = value
        }
        var rest = options
        rest.remove(at: position)
        guard !rest[0].isEmpty else { throw malformed("no attribute name") }
        return ValueRange(attribute: rest.joined(separator: ";").lowercased(), low: low, high: high)
    }

    /// Decimal digits only, at most nine of them: a value index no directory reaches, and
    /// nothing arithmetic on it can overflow.
    private static func number(_ text: Substring) -> Int? {
        guard !text.isEmpty, text.utf8.count <= 9, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int(text)
    }

    /// The description that asks for the values of `attribute` from `low`: `size` of them,
    /// or as many as the server gives (`low-*`) when `size` is nil.
    static func description(_ attribute: String, low: Int, size: Int?) -> String {
        guard let size else { return "\(attribute);range=\(low)-*" }
        return "\(attribute);range=\(low)-\(low + size - 1)"
    }
}

/// Completes entries whose multi-valued attributes came back in ranges: asks for the rest,
/// range by range, until the server says it sent the last value, and puts them all under
/// the attribute's plain name.
///
/// Each request waits at most the connection's `timeout`. A range that fails fails the read
/// (the group's members are unknown, never fewer). An entry that changes between two ranges
/// (its `uSNChanged` or other version moves) is read again from the first value, since
/// values shift when one is removed; one that keeps changing fails the read.
enum RangedValues {
    /// Called after each range answer (the entry's DN, the first value's index).
    typealias Observer = @Sendable (_ dn: String, _ low: Int) async -> Void

    /// How often one entry's values are read again from the start because it changed.
    static let maximumRestarts = 3

    /// The version attributes (lowercased) compared between ranges.
    static let versionAttributes: Set<String> = ["usnchanged", "entrycsn", "modifytimestamp", "whenchanged"]

    /// Completes every entry of `entries` that holds values in ranges.
    static func complete(
        _ entries: inout [LDAPEntry], of request: LDAPSearchRequest, on connection: LDAPConnection,
        afterRange: Observer? = nil
    ) async throws {
        for index in entries.indices where !entries[index].rangedNames.isEmpty {
            try await complete(&entries[index], of: request, on: connection, afterRange: afterRange)
        }
    }

    static func complete(
        _ entry: inout LDAPEntry, of request: LDAPSearchRequest, on connection: LDAPConnection, afterRange: Observer?
    ) async throws {
        let versionNames = request.attributes.filter { versionAttributes.contains($0.lowercased()) }
        for name in entry.rangedNames {
            guard let first = try ValueRange.parse(name) else { continue }
            var values = entry[name]
            entry.setValues(name, [])
            guard first.low == 0 else {
                throw LDAPError(
                    .search,
                    "the server began the values of \(first.attribute) of \(entry.dn) at index \(first.low), not 0 (\(name))")
            }
            var versions = versionNames.map { entry[$0] }
            var next = first.high.map { $0 + 1 }
            var restarts = 0
            while let low = next {
                let asked = ValueRange.description(first.attribute, low: low, size: request.rangeSize)
                let answer: LDAPEntry?
                do {
                    answer = try await read(asked, versions: versionNames, of: entry.dn, on: connection)
                } catch var error as LDAPError {
                    error.message =
                        "reading the values of \(first.attribute) of \(entry.dn) in ranges failed at \(asked) after "
                        + "\(values.count) values, so the read is incomplete (its values are unknown, not fewer): "
                        + error.message
                    throw error
                }
                if let afterRange { await afterRange(entry.dn, low) }
                guard let answer else {
                    throw LDAPError(
                        .search, "\(entry.dn) was not found when reading the values of \(first.attribute) from \(asked)")
                }
                let answerVersions = versionNames.map { answer[$0] }
                if answerVersions != versions {
                    restarts += 1
                    guard restarts <= maximumRestarts else {
                        throw LDAPError(
                            .search,
                            "\(entry.dn) changed while its \(first.attribute) values were read in ranges, "
                                + "\(maximumRestarts) times in a row; the read is incomplete and is tried again later")
                    }
                    // Values shift when one is removed: start again from the first.
                    versions = answerVersions
                    for (name, value) in zip(versionNames, versions) { entry.setValues(name.lowercased(), value) }
                    values = []
                    next = 0
                    continue
                }
                var returned: (name: String, range: ValueRange)?
                for name in answer.rangedNames {
                    if let range = try ValueRange.parse(name), range.attribute == first.attribute {
                        returned = (name, range)
                        break
                    }
                }
                guard let returned else {
                    // Nothing from `low` on: the previous answer held the last value.
                    next = nil
                    continue
                }
                guard returned.range.low == low else {
                    throw LDAPError(
                        .search,
                        "asked for \(asked) of \(entry.dn), the server answered with \(returned.name)")
                }
                values += answer[returned.name]
                next = returned.range.high.map { $0 + 1 }
            }
            entry.setValues(first.attribute, entry[first.attribute] + values)
        }
    }

    /// One range request: the entry at `dn` with the values `description` asks for and its
    /// version attributes; nil when the server returns no entry.
    private static func read(
        _ description: String, versions: [String], of dn: String, on connection: LDAPConnection
    ) async throws -> LDAPEntry? {
        let request = LDAPSearchRequest(base: dn, scope: .base, filter: "(objectClass=*)", attributes: [description] + versions)
        return try await withTaskCancellationHandler {
            try await connection.readEntry(request)
        } onCancel: {
            connection.interrupt()
        }
    }
}

extension LDAPConnection {
    /// The first entry `request` returns (a base search), or nil when it returns none.
    func readEntry(_ request: LDAPSearchRequest) throws -> LDAPEntry? {
        var search = try startSearch(request, pageSize: nil)
        var entries: [LDAPEntry] = []
        while !search.isDone { entries += try nextPage(&search) }
        return entries.first
    }
}
