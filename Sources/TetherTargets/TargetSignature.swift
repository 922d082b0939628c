import Crypto
import Foundation
import TetherCore

/// The `Tether-Signature` header on every request Tether sends a target (docs/targets.md):
/// `t=<unix seconds>,v2=<hex HMAC-SHA256(secret, "<t>\n<METHOD>\n<path>\n<Idempotency-Key>\n<body>")>`.
///
/// `v2` binds the method, the request target (path and query, as sent) and the idempotency key as
/// well as the time and the body, so a captured `GET` cannot be replayed as a `DELETE` of a
/// grant. `v1` (`HMAC(secret, "<t>.<body>")`, the HR webhook's scheme) is added only for a
/// target configured with `signatureV1` while it moves to `v2`.
public struct TargetSignature: Sendable {
    private let key: SymmetricKey
    private let includesV1: Bool

    /// - Parameters:
    ///   - secret: the shared secret's bytes, as read from the target's `secretFile`.
    ///   - includesV1: also send `v1`, for a target that does not verify `v2` yet.
    public init(secret: some Sequence<UInt8>, includesV1: Bool = false) {
        key = SymmetricKey(data: Array(secret))
        self.includesV1 = includesV1
    }

    /// The header value for a request sent at `time`.
    public func header(
        method: String, target: String, idempotencyKey: String?, body: some Collection<UInt8>, at time: Date
    ) -> String {
        let t = Int64(time.timeIntervalSince1970.rounded(.down))
        var header = "t=\(t)"
        if includesV1 { header += ",v1=\(mac(body: body, timestamp: t))" }
        header += ",v2=\(mac(method: method, target: target, idempotencyKey: idempotencyKey, body: body, timestamp: t))"
        return header
    }

    /// Lower-case hex `v2`: HMAC-SHA256 of `"<t>\n<METHOD>\n<target>\n<key or empty>\n<body>"`.
    /// None of the first four can hold a line feed (HTTP forbids it in a method, a request
    /// target and a header value), so the message splits one way only.
    public func mac(
        method: String, target: String, idempotencyKey: String?, body: some Sequence<UInt8>, timestamp: Int64
    ) -> String {
        var hmac = HMAC<SHA256>(key: key)
        hmac.update(data: Array("\(timestamp)\n\(method)\n\(target)\n\(idempotencyKey ?? "")\n".utf8))
        hmac.update(data: Array(body))
        return Self.hex(hmac.finalize())
    }

    /// Lower-case hex `v1`: HMAC-SHA256 of `"<timestamp>.<body>"`.
    public func mac(body: some Sequence<UInt8>, timestamp: Int64) -> String {
        var signed = Array("\(timestamp).".utf8)
        signed.append(contentsOf: body)
        return Self.hex(HMAC<SHA256>.authenticationCode(for: signed, using: key))
    }

    private static func hex(_ bytes: some Sequence<UInt8>) -> String {
        bytes.map { String(format: "%02x", $0) }.joined()
    }

    /// Reads a target's secret file by the one rule of ``SecretFile``.
    public static func readSecret(path: String, target: String) throws -> [UInt8] {
        do throws(SecretFile.Unusable) {
            return try SecretFile.read(path)
        } catch {
            throw TargetError(.configuration, target: target, "the secret file \(error.description)")
        }
    }
}
