import Crypto
import Foundation

/// The `Tether-Signature` header (SPEC §8): `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>`.
///
/// The same scheme signs HR webhooks into Tether and every request Tether sends a target, so a
/// target verifies it as Tether verifies its HR system.
public struct TargetSignature: Sendable {
    private let key: SymmetricKey

    /// - Parameter secret: the shared secret's bytes, as read from the target's `secretFile`.
    public init(secret: some Sequence<UInt8>) {
        key = SymmetricKey(data: Array(secret))
    }

    /// The header value for `body` sent at `time`.
    public func header(body: some Sequence<UInt8>, at time: Date) -> String {
        let t = Int64(time.timeIntervalSince1970.rounded(.down))
        return "t=\(t),v1=\(mac(body: body, timestamp: t))"
    }

    /// Lower-case hex HMAC-SHA256 of `"<timestamp>.<body>"`.
    public func mac(body: some Sequence<UInt8>, timestamp: Int64) -> String {
        var signed = Array("\(timestamp).".utf8)
        signed.append(contentsOf: body)
        let code = HMAC<SHA256>.authenticationCode(for: signed, using: key)
        return code.map { String(format: "%02x", $0) }.joined()
    }

    /// Reads a secret file: its bytes without the trailing newline an editor leaves.
    public static func readSecret(path: String, target: String) throws -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TargetError(.configuration, target: target, "cannot read the secret file \(path); check that it exists and that tether may read it")
        }
        var bytes = Array(data)
        while let last = bytes.last, last == UInt8(ascii: "\n") || last == UInt8(ascii: "\r") { bytes.removeLast() }
        guard !bytes.isEmpty else {
            throw TargetError(.configuration, target: target, "the secret file \(path) is empty; write the shared secret into it")
        }
        return bytes
    }
}
