/// Lower-case hexadecimal: the one codec for digests, ids, signatures and escapes.
///
/// Encoding always writes lower-case digits. Decoding has one core, ``value(of:lowercaseOnly:)``
/// and ``number(_:lowercaseOnly:)``, which throws ``InvalidDigit`` saying where the text stops
/// being hex; a caller that only needs yes or no uses ``decode(_:)`` or `try?`.
public enum Hex {
    @usableFromInline static let digits: StaticString = "0123456789abcdef"

    /// Where hex text is not hex: the offset, from the start of the text given, of the first
    /// character that is not a hex digit, or of its end when it is too short.
    public struct InvalidDigit: Error, Sendable, Hashable {
        /// The offset of the character that is not a digit.
        public let offset: Int

        /// The fault at `offset`.
        public init(offset: Int) { self.offset = offset }
    }

    /// Appends the two lower-case hex digits of `byte` to `out`.
    @inlinable
    public static func append(_ byte: UInt8, to out: inout [UInt8]) {
        digits.withUTF8Buffer { digits in
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
    }

    /// Lower-case hex of the first `count` bytes of `bytes`.
    public static func encode(_ bytes: some Sequence<UInt8>, count: Int = .max) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for (index, byte) in bytes.enumerated() where index < count {
            append(byte, to: &out)
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `prefix` followed by the 32 lower-case hex digits of the 128 bits `high`, `low`: the
    /// text of grant and decision ids, written without intermediate strings (a full
    /// reconciliation spells a million).
    public static func encode(prefix: StaticString, high: UInt64, low: UInt64) -> String {
        let start = prefix.utf8CodeUnitCount
        return String(unsafeUninitializedCapacity: start + 32) { buffer in
            prefix.withUTF8Buffer { prefix in
                for index in 0..<start { buffer[index] = prefix[index] }
            }
            digits.withUTF8Buffer { digits in
                for index in 0..<16 {
                    let shift = UInt64(60 - 4 * index)
                    buffer[start + index] = digits[Int((high >> shift) & 0xf)]
                    buffer[start + 16 + index] = digits[Int((low >> shift) & 0xf)]
                }
            }
            return start + 32
        }
    }

    /// The value of the hex digit `byte`; nil when it is not one. Upper-case digits count
    /// unless `lowercaseOnly`.
    @inlinable
    public static func value(of byte: UInt8, lowercaseOnly: Bool = false) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F") where !lowercaseOnly: byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    /// The number the hex digits `text` spell, at most 16 of them (`\uXXXX` escapes, the
    /// halves of an id).
    ///
    /// - Throws: ``InvalidDigit`` at the first character that is not a digit.
    @inlinable
    public static func number(_ text: some Collection<UInt8>, lowercaseOnly: Bool = false) throws(InvalidDigit) -> UInt64 {
        precondition(text.count <= 16, "a hex number of more than 64 bits")
        var value: UInt64 = 0
        for (offset, byte) in text.enumerated() {
            guard let digit = Self.value(of: byte, lowercaseOnly: lowercaseOnly) else { throw InvalidDigit(offset: offset) }
            value = value << 4 | UInt64(digit)
        }
        return value
    }

    /// The bytes that `text` spells, two digits (either case) a byte.
    ///
    /// - Throws: ``InvalidDigit`` at the first character that is not a digit, or at the end
    ///   when the count of digits is odd.
    public static func bytes(_ text: some StringProtocol) throws(InvalidDigit) -> [UInt8] {
        let utf8 = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count / 2)
        var index = 0
        while index < utf8.count {
            guard let high = value(of: utf8[index]) else { throw InvalidDigit(offset: index) }
            guard index + 1 < utf8.count else { throw InvalidDigit(offset: index + 1) }
            guard let low = value(of: utf8[index + 1]) else { throw InvalidDigit(offset: index + 1) }
            out.append(high << 4 | low)
            index += 2
        }
        return out
    }

    /// The bytes that `text` spells, two digits (either case) a byte; nil when it is not hex
    /// or has an odd count of digits.
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        try? bytes(text)
    }
}
