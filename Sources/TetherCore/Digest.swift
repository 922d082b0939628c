import Crypto
import Foundation

enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    /// Lower-case hex SHA-256 of a UTF-8 string.
    static func sha256(_ text: String) -> String {
        encode(SHA256.hash(data: Data(text.utf8)))
    }

    /// Lower-case hex SHA-256 of the UTF-8 of `parts`, one after the other, without joining them.
    static func sha256(parts: String...) -> String {
        var hasher = SHA256()
        for var part in parts {
            part.withUTF8 { hasher.update(bufferPointer: UnsafeRawBufferPointer($0)) }
        }
        return encode(hasher.finalize())
    }

    /// Lower-case hex of the first `count` bytes of `bytes`.
    static func encode<Bytes: Sequence<UInt8>>(_ bytes: Bytes, count: Int = .max) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        for (index, byte) in bytes.enumerated() where index < count {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
