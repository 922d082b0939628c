import Foundation

/// A signed statement that the audit chain had `seq` records ending in `hash` at `time`
/// (SPEC §18, "Signed checkpoints"; docs/audit.md). Kept outside the store, checkpoints show
/// what the chain alone cannot: that the newest records were not cut off, and that the chain
/// was not rewritten from its first record by someone holding the file.
public struct AuditCheckpoint: Sendable, Hashable, Codable {
    /// The seq of the chain's last record when it was signed.
    public var seq: Int
    /// That record's `hash`.
    public var hash: String
    /// When it was signed, as the audit log writes times (`2026-11-28T10:00:00.123Z`).
    public var time: String
    /// Base64 of the 64-byte Ed25519 signature of ``signedMessage``.
    public var signature: String
    /// The id of the public key that verifies it: ``AuditPublicKey/id``.
    public var key: String

    /// A checkpoint as signed or read.
    public init(seq: Int, hash: String, time: String, signature: String, key: String) {
        self.seq = seq
        self.hash = hash
        self.time = time
        self.signature = signature
        self.key = key
    }

    /// The first line of every signed message: it keeps a checkpoint signature from being
    /// taken for the key's signature of anything else.
    public static let domain = "tether-audit-checkpoint-v1"

    /// The bytes signed: `tether-audit-checkpoint-v1\n<seq>\n<hash>\n<time>\n` in UTF-8,
    /// `seq` in decimal; what `printf 'tether-audit-checkpoint-v1\n%s\n%s\n%s\n' SEQ HASH TIME`
    /// writes.
    public static func signedMessage(seq: Int, hash: String, time: String) -> [UInt8] {
        Array("\(domain)\n\(seq)\n\(hash)\n\(time)\n".utf8)
    }

    /// This checkpoint's ``signedMessage(seq:hash:time:)``.
    public var signedMessage: [UInt8] { Self.signedMessage(seq: seq, hash: hash, time: time) }

    /// The JSON Lines form: `{"hash","key","seq","signature","time"}`, keys sorted, no spaces.
    public var line: String {
        CanonicalJSON.object([
            "seq": .int(seq), "hash": .string(hash), "time": .string(time), "signature": .string(signature),
            "key": .string(key),
        ])
    }

    /// Reads one JSON line; the error says which key is missing or of the wrong type.
    public init(line: String) throws(Unreadable) {
        guard let object = try? JSONDecoder().decode([String: AuditValue].self, from: Data(line.utf8)) else {
            throw Unreadable(reason: "not a JSON object of strings and whole numbers")
        }
        func text(_ key: String) throws(Unreadable) -> String {
            guard let value = object[key]?.string, !value.isEmpty else {
                throw Unreadable(reason: "\"\(key)\" is missing or not a string")
            }
            return value
        }
        guard case .int(let seq)? = object["seq"], seq >= 1 else {
            throw Unreadable(reason: "\"seq\" is missing or not a whole number from 1")
        }
        self.init(seq: seq, hash: try text("hash"), time: try text("time"), signature: try text("signature"), key: try text("key"))
    }

    /// Why a line is not a checkpoint.
    public struct Unreadable: Error, Sendable, Hashable, CustomStringConvertible {
        /// What is wrong with it.
        public let reason: String
        public var description: String { reason }
    }
}
