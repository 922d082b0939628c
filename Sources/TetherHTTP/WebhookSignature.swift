import Foundation
import Hummingbird
import TetherCore

/// The `Tether-Signature` header on HR webhooks (SPEC §8): `t=<unix seconds>,v1=<hex
/// HMAC-SHA256(secret, "<t>.<raw body>")>`, with as many `v1=` as the sender has secrets in
/// rotation. ``TetherSignature`` holds the scheme, shared with the requests Tether sends to
/// HTTP targets (SPEC §6); a webhook is checked on `v1` only.
public enum WebhookSignature {
    /// The header's name.
    public static let headerName = HTTPFields.Element.Name("Tether-Signature")!

    /// Why a signature was refused. The description names what failed and never the
    /// secret or the signature.
    public typealias Failure = TetherSignature.Failure

    /// The header value signing `body` at `time` with each of `secrets`.
    public static func header(body: some DataProtocol, secrets: [[UInt8]], time: Date) -> String {
        let t = TetherSignature.timestamp(time)
        return TetherSignature.header(
            timestamp: t, v1: secrets.map { TetherSignature(secret: $0).v1(timestamp: String(t), body: body) })
    }

    /// Checks `header` for `body`: well formed, `t` within `tolerance` of `now` both ways, and
    /// at least one `v1` equal, in constant time, to the HMAC under at least one secret.
    public static func verify(
        header: String?, body: some DataProtocol, secrets: WebhookSecrets, now: Date, tolerance: Duration
    ) throws(Failure) {
        try Presented(header: header, now: now, tolerance: tolerance).verify(body: body, secrets: secrets)
    }

    /// A header that is well formed and fresh, not yet checked against a body: what can be
    /// known before the body is read, so that a request without a usable signature is refused
    /// without reading up to `http.maxBodyBytes` of it.
    public struct Presented: Sendable {
        let header: TetherSignature.Header

        /// Parses `header` and checks `t` against `now` and `tolerance`.
        public init(header: String?, now: Date, tolerance: Duration) throws(Failure) {
            self.header = try TetherSignature.Header(parsing: header, requiring: .v1, now: now, tolerance: tolerance)
        }

        /// Checks that at least one `v1` is, in constant time, the HMAC of `body` under at least
        /// one secret.
        public func verify(body: some DataProtocol, secrets: WebhookSecrets) throws(Failure) {
            try header.verifyV1(body: body, secrets: secrets.signatures)
        }
    }
}
