import Foundation

/// The wall clock the core and the engine read. Injected so tests never sleep for real.
public protocol WallClock: Sendable {
    func now() -> Date
}

/// The system's real time.
public struct SystemWallClock: WallClock {
    public init() {}
    public func now() -> Date { Date() }
}

/// A clock that only moves when told to; for tests and simulations.
public final class ManualWallClock: WallClock, @unchecked Sendable {
    private let lock = NSLock()
    private var current: Date

    public init(_ start: Date = Date(timeIntervalSince1970: 1_795_000_000)) { current = start }

    public func now() -> Date { lock.withLock { current } }

    /// Moves the clock forward by `seconds`.
    public func advance(by seconds: TimeInterval) { lock.withLock { current += seconds } }

    /// Sets the clock to `date`.
    public func set(_ date: Date) { lock.withLock { current = date } }
}

/// Timestamps as the audit log and versions write them: UTC, millisecond precision.
public enum Timestamp {
    /// `2026-11-28T10:00:00.123Z`: fixed width, so string order is time order.
    public static func string(_ date: Date) -> String {
        let millis = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        let seconds = millis >= 0 ? millis / 1000 : (millis - 999) / 1000
        let fraction = millis - seconds * 1000
        let day = Int((seconds >= 0 ? seconds : seconds - 86_399) / 86_400)
        let secondOfDay = Int(seconds - Int64(day) * 86_400)
        let (y, m, d) = civil(fromDays: day)
        guard (0...9999).contains(y) else {
            return String(
                format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", y, m, d, secondOfDay / 3600,
                (secondOfDay / 60) % 60, secondOfDay % 60, Int(fraction))
        }
        // Written digit by digit: every audit record and grant row carries one, and
        // String(format:) costs microseconds each.
        return String(unsafeUninitializedCapacity: 24) { out in
            func put(_ value: Int, _ width: Int, at offset: Int) {
                var value = value
                for index in stride(from: offset + width - 1, through: offset, by: -1) {
                    out[index] = UInt8(ascii: "0") + UInt8(value % 10)
                    value /= 10
                }
            }
            put(y, 4, at: 0)
            out[4] = UInt8(ascii: "-")
            put(m, 2, at: 5)
            out[7] = UInt8(ascii: "-")
            put(d, 2, at: 8)
            out[10] = UInt8(ascii: "T")
            put(secondOfDay / 3600, 2, at: 11)
            out[13] = UInt8(ascii: ":")
            put((secondOfDay / 60) % 60, 2, at: 14)
            out[16] = UInt8(ascii: ":")
            put(secondOfDay % 60, 2, at: 17)
            out[19] = UInt8(ascii: ".")
            put(Int(fraction), 3, at: 20)
            out[23] = UInt8(ascii: "Z")
            return 24
        }
    }

    /// Parses RFC 3339 / ISO 8601 date-times with or without fractional seconds and offsets.
    public static func parse(_ text: String) -> Date? {
        let fractional = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        if let date = try? fractional.parse(text) { return date }
        return try? Date.ISO8601FormatStyle().parse(text)
    }

    /// Days since 1970-01-01 to a proleptic Gregorian (year, month, day); H. Hinnant's algorithm.
    private static func civil(fromDays days: Int) -> (Int, Int, Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }
}

extension Timestamp {
    /// A source version for a point in time: `2026-11-28T10:00:00.123456Z`, microsecond
    /// precision, fixed width. Every source writes versions in this form (LDAP appends the
    /// rest of its `entryCSN` after a `#`), so string order is time order across sources.
    public static func version(_ date: Date) -> String {
        let micros = Int64((date.timeIntervalSince1970 * 1_000_000).rounded(.down))
        let millisPart = string(Date(timeIntervalSince1970: Double(micros / 1000) / 1000))
        let extra = String(format: "%03d", Int(((micros % 1000) + 1000) % 1000))
        return String(millisPart.dropLast()) + extra + "Z"
    }

    /// The latest version a source may state at `now`: `now` plus `tolerance`. A version
    /// from a clock further ahead would make every later event for its person stale.
    public static func versionCeiling(now: Date, tolerance: TimeInterval) -> String {
        version(now + tolerance)
    }

    /// Whether `version` (a source version, LDAP's with its `#` suffix) states a time later
    /// than `ceiling`. A version that does not start with a year states no time: never later.
    public static func version(_ version: String, isLaterThan ceiling: String) -> Bool {
        guard let first = version.utf8.first, UInt8(ascii: "0")...UInt8(ascii: "9") ~= first else { return false }
        let time = version.split(separator: "#", maxSplits: 1).first.map(String.init) ?? version
        return time > ceiling
    }
}

/// Durations as the configuration writes them.
public enum DurationText {
    /// `10m`, `1h`, `90s`: a window length as the configuration writes it.
    public static func string(_ seconds: TimeInterval) -> String {
        let whole = Int(seconds.rounded())
        if Double(whole) != seconds { return "\(Int((seconds * 1000).rounded()))ms" }
        if whole > 0, whole % 86_400 == 0 { return "\(whole / 86_400)d" }
        if whole > 0, whole % 3600 == 0 { return "\(whole / 3600)h" }
        if whole > 0, whole % 60 == 0 { return "\(whole / 60)m" }
        return "\(whole)s"
    }
}
