import Foundation
import TetherCore

/// Versions of directory entries in Tether's form, so that string order is time order
/// across sources (see `Timestamp.version`).
public enum DirectoryVersion {
    /// An OpenLDAP `entryCSN` (`20261128100000.123456Z#000000#000#000000`) as
    /// `2026-11-28T10:00:00.123456Z#000000#000#000000`: the time part in `Timestamp.version`
    /// form, the change counter, replica id and modifier number kept after the `#`.
    public static func fromCSN(_ csn: String) -> String? {
        var csn = csn
        return csn.withUTF8 { bytes in
            let hash = bytes.firstIndex(of: UInt8(ascii: "#")) ?? bytes.count
            // Every entry of a complete read carries one: the common UTC form is written
            // straight into the string.
            if let version = utcVersion(UnsafeBufferPointer(rebasing: bytes[0..<hash]), suffix: UnsafeBufferPointer(rebasing: bytes[hash...])) {
                return version
            }
            guard var version = utf8Version(Array(bytes[0..<hash])[...]) else { return nil }
            version += bytes[hash...]
            return String(decoding: version, as: UTF8.self)
        }
    }

    /// `time` (`20261128100000Z`, `20261128100000.123456Z`, at most six fraction digits) as
    /// `2026-11-28T10:00:00.123456Z` followed by `suffix`; nil for any other form.
    private static func utcVersion(_ time: UnsafeBufferPointer<UInt8>, suffix: UnsafeBufferPointer<UInt8>) -> String? {
        func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }
        guard time.count >= 15, time.last == UInt8(ascii: "Z"), time[0..<14].allSatisfy(isDigit) else { return nil }
        let fraction: Slice<UnsafeBufferPointer<UInt8>>
        if time.count == 15 {
            fraction = time[14..<14]
        } else {
            guard time[14] == UInt8(ascii: ".") || time[14] == UInt8(ascii: ","), time.count <= 22 else { return nil }
            fraction = time[15..<(time.count - 1)]
            guard fraction.allSatisfy(isDigit) else { return nil }
        }
        func number(_ at: Int) -> Int { Int(time[at] - 0x30) * 10 + Int(time[at + 1] - 0x30) }
        guard (1...12).contains(number(4)), (1...31).contains(number(6)), number(8) < 24, number(10) < 60, number(12) < 61
        else { return nil }
        return String(unsafeUninitializedCapacity: 27 + suffix.count) { out in
            var position = 0
            func put(_ byte: UInt8) {
                out[position] = byte
                position += 1
            }
            for (index, byte) in time[0..<14].enumerated() {
                switch index {
                case 4, 6: put(UInt8(ascii: "-"))
                case 8: put(UInt8(ascii: "T"))
                case 10, 12: put(UInt8(ascii: ":"))
                default: break
                }
                put(byte)
            }
            put(UInt8(ascii: "."))
            for digit in 0..<6 { put(digit < fraction.count ? fraction[fraction.startIndex + digit] : UInt8(ascii: "0")) }
            put(UInt8(ascii: "Z"))
            for byte in suffix { put(byte) }
            return position
        }
    }

    /// An LDAP GeneralizedTime (`modifyTimestamp`, `whenChanged`: `20261128100000Z`,
    /// `20261128100000.0Z`, `20261128120000+0200`) as `2026-11-28T10:00:00.000000Z`.
    public static func fromGeneralizedTime(_ text: String) -> String? {
        utf8Version(Array(text.utf8)[...]).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The UTF-8 bytes of the version of a GeneralizedTime, built in one pass.
    private static func utf8Version(_ bytes: ArraySlice<UInt8>) -> [UInt8]? {
        let start = bytes.startIndex
        guard bytes.count >= 15, bytes[start..<(start + 14)].allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        func number(_ range: Range<Int>) -> Int { range.reduce(0) { $0 * 10 + Int(bytes[start + $1] - 0x30) } }
        var index = start + 14
        var fraction: [UInt8] = []
        if bytes[index] == UInt8(ascii: ".") || bytes[index] == UInt8(ascii: ",") {
            index += 1
            while index < bytes.endIndex, bytes[index] >= 0x30, bytes[index] <= 0x39 {
                fraction.append(bytes[index])
                index += 1
            }
        }
        guard index < bytes.endIndex else { return nil }
        let micros = fraction.prefix(6) + Array(repeating: UInt8(ascii: "0"), count: max(0, 6 - fraction.count))
        let (year, month, day, hour, minute, second) = (
            number(0..<4), number(4..<6), number(6..<8), number(8..<10), number(10..<12), number(12..<14)
        )
        guard (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61 else { return nil }
        if bytes[index] == UInt8(ascii: "Z"), index == bytes.endIndex - 1 {
            // `2026-11-28T10:00:00.123456Z`, byte by byte.
            var out: [UInt8] = []
            out.reserveCapacity(27 + 22)
            out += bytes[start..<(start + 4)]
            out.append(UInt8(ascii: "-"))
            out += bytes[(start + 4)..<(start + 6)]
            out.append(UInt8(ascii: "-"))
            out += bytes[(start + 6)..<(start + 8)]
            out.append(UInt8(ascii: "T"))
            out += bytes[(start + 8)..<(start + 10)]
            out.append(UInt8(ascii: ":"))
            out += bytes[(start + 10)..<(start + 12)]
            out.append(UInt8(ascii: ":"))
            out += bytes[(start + 12)..<(start + 14)]
            out.append(UInt8(ascii: "."))
            out += micros
            out.append(UInt8(ascii: "Z"))
            return out
        }
        // An offset: convert to UTC.
        guard bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-"), bytes.endIndex - index == 5,
            bytes[(index + 1)...].allSatisfy({ $0 >= 0x30 && $0 <= 0x39 })
        else { return nil }
        let sign = bytes[index] == UInt8(ascii: "+") ? 1 : -1
        let offset = sign * (number((index - start + 1)..<(index - start + 3)) * 3600
            + number((index - start + 3)..<(index - start + 5)) * 60)
        var components = DateComponents()
        components.timeZone = TimeZone(identifier: "UTC")
        (components.year, components.month, components.day) = (year, month, day)
        (components.hour, components.minute, components.second) = (hour, minute, second)
        guard let local = Calendar(identifier: .gregorian).date(from: components) else { return nil }
        let microText = String(decoding: micros, as: UTF8.self)
        let utc = local.addingTimeInterval(TimeInterval(-offset) + (Double(microText) ?? 0) / 1_000_000)
        return Array(Timestamp.version(utc).utf8)
    }

    /// The time part of a syncrepl cookie's `csn=` (`rid=000,csn=20261128100000.123456Z#…`),
    /// normalised, for changes that carry no entry of their own (a deletion).
    public static func fromCookie(_ cookie: Data) -> String? {
        let text = String(decoding: cookie, as: UTF8.self)
        guard let range = text.range(of: "csn=") else { return nil }
        let csn = text[range.upperBound...].prefix { $0 != "," && $0 != ";" }
        return fromCSN(String(csn))
    }
}

/// The text forms of 16-byte UUIDs.
enum UUIDText {
    /// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` in lowercase hex.
    ///
    /// - Parameter littleEndianFields: true for a Microsoft GUID (`objectGUID`), whose first
    ///   three fields are stored little-endian, so the text matches what AD tools show.
    static func format(_ bytes: [UInt8], littleEndianFields: Bool) -> String {
        guard bytes.count == 16 else { return Hex.encode(bytes) }
        let order =
            littleEndianFields
            ? [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15] : Array(0..<16)
        var text: [UInt8] = []
        text.reserveCapacity(36)
        for (position, index) in order.enumerated() {
            if position == 4 || position == 6 || position == 8 || position == 10 { text.append(UInt8(ascii: "-")) }
            Hex.append(bytes[index], to: &text)
        }
        return String(decoding: text, as: UTF8.self)
    }
}
