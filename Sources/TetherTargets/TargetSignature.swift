import Foundation
import TetherCore

/// The `Tether-Signature` header on every request Tether sends a target (docs/targets.md):
/// `t=<unix seconds>,v2=<hex HMAC-SHA256(secret, "<t>\n<METHOD>\n<path>\n<Idempotency-Key>\n<body>")>`,
/// signed by ``TetherSignature``.
///
/// `v2` binds the method, the request target (path and query, as sent) and the idempotency key as
/// well as the time and the body, so a captured `GET` cannot be replayed as a `DELETE` of a
/// grant. `v1` (`HMAC(secret, "<t>.<body>")`, the HR webhook's scheme) is added only for a
/// target configured with `signatureV1` while it moves to `v2`.
public struct TargetSignature: Sendable {
    private let signer: TetherSignature
    private let includesV1: Bool

    /// - Parameters:
    ///   - secret: the shared secret's bytes, as read from the target's `secretFile`.
    ///   - includesV1: also send `v1`, for a target that does not verify `v2` yet.
    public init(secret: some Sequence<UInt8>, includesV1: Bool = false) {
        signer = TetherSignature(secret: secret)
        self.includesV1 = includesV1
    }

    /// The header value for a request sent at `time`.
    public func header(
        method: String, target: String, idempotencyKey: String?, body: some Collection<UInt8>, at time: Date
    ) -> String {
        let t = TetherSignature.timestamp(time)
        let body = Array(body)
        return TetherSignature.header(
            timestamp: t, v1: includesV1 ? [signer.v1(timestamp: String(t), body: body)] : [],
            v2: signer.v2(timestamp: String(t), method: method, target: target, idempotencyKey: idempotencyKey, body: body))
    }

    /// Lower-case hex `v2`: HMAC-SHA256 of `"<t>\n<METHOD>\n<target>\n<key or empty>\n<body>"`.
    public func mac(
        method: String, target: String, idempotencyKey: String?, body: some Sequence<UInt8>, timestamp: Int64
    ) -> String {
        Hex.encode(
            signer.v2(timestamp: String(timestamp), method: method, target: target, idempotencyKey: idempotencyKey, body: Array(body)))
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
