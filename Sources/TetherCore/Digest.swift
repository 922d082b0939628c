import Crypto
import Foundation

extension Hex {
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
}
