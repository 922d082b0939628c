import Crypto
import Foundation

/// The `Tether-Signature` scheme, the one signer and verifier for both of its uses: HR
/// webhooks Tether receives (SPEC §8, `v1`) and requests Tether sends to HTTP targets
/// (SPEC §6, docs/targets.md, `v2` and optionally `v1`).
///
/// The header is `t=<unix seconds>` followed by signatures, each lower-case hex HMAC-SHA256
/// under the shared secret:
/// - `v1=` of `"<t>.<body>"`, as many as the sender has secrets in rotation;
/// - `v2=` of `"<t>\n<METHOD>\n<target>\n<Idempotency-Key or empty>\n<body>"`, which binds the
///   method, the request target (path and query, as sent) and the idempotency key as well.
///   None of the first four can hold a line feed (HTTP forbids it in a method, a request
///   target and a header value), so the message splits one way only.
///
/// The secret never appears in a description, an error or a log.
public struct TetherSignature: Sendable, CustomStringConvertible {
    /// The signing schemes.
    public enum Scheme: String, Sendable, Hashable {
        /// HMAC of `"<t>.<body>"`.
        case v1
        /// HMAC of `"<t>\n<METHOD>\n<target>\n<Idempotency-Key>\n<body>"`.
        case v2
    }

    private let key: SymmetricKey

    /// A signer and verifier for one shared secret.
    public init(secret: some Sequence<UInt8>) {
        key = SymmetricKey(data: Array(secret))
    }

    /// Names nothing of the secret.
    public var description: String { "TetherSignature(redacted)" }

    /// The `v1` code for `body` sent at `timestamp`, the text of `t` as sent.
    public func v1(timestamp: some StringProtocol, body: some DataProtocol) -> [UInt8] {
        var hmac = HMAC<SHA256>(key: key)
        hmac.update(data: Array(timestamp.utf8))
        hmac.update(data: [UInt8(ascii: ".")])
        hmac.update(data: body)
        return Array(hmac.finalize())
    }

    /// The `v2` code for a request sent at `timestamp`, the text of `t` as sent.
    public func v2(
        timestamp: some StringProtocol, method: String, target: String, idempotencyKey: String?, body: some DataProtocol
    ) -> [UInt8] {
        var hmac = HMAC<SHA256>(key: key)
        hmac.update(data: Array("\(timestamp)\n\(method)\n\(target)\n\(idempotencyKey ?? "")\n".utf8))
        hmac.update(data: body)
        return Array(hmac.finalize())
    }

    /// The header value `t=<timestamp>` followed by `v1=` for each of `v1` and `v2=` for `v2`.
    public static func header(timestamp: Int64, v1: [[UInt8]] = [], v2: [UInt8]? = nil) -> String {
        var header = "t=\(timestamp)"
        for code in v1 { header += ",v1=" + Hex.encode(code) }
        if let v2 { header += ",v2=" + Hex.encode(v2) }
        return header
    }

    /// The whole seconds of `time`, as `t` carries them.
    public static func timestamp(_ time: Date) -> Int64 {
        Int64(time.timeIntervalSince1970.rounded(.down))
    }

    /// Whether one of `header`'s `scheme` signatures is this secret's `code`. Every signature
    /// is compared, each in constant time, so timing tells nothing about which or how much
    /// matched.
    public func matches(_ code: [UInt8], in header: Header, scheme: Scheme) -> Bool {
        var matched = false
        for signature in header.signatures[scheme]?.codes ?? [] {
            matched = ConstantTime.equal(code, signature) || matched
        }
        return matched
    }
}

extension TetherSignature {
    /// Why a header was refused. The description names what failed and never the secret or
    /// the signature.
    public enum Failure: Error, Sendable, Hashable, CustomStringConvertible {
        /// No `Tether-Signature` header.
        case missing
        /// The header is not `t=…,v1=…`; the text says what is off.
        case malformed(String)
        /// `t` is `skew` seconds from now (negative: in the past), more than `tolerance` allows.
        case outsideTolerance(skew: Int, tolerance: Int)
        /// None of the `signatures` values of `scheme` matches under any secret.
        case mismatch(scheme: Scheme, signatures: Int)

        /// What failed, fit for an answer, a log line and an audit record.
        public var description: String {
            switch self {
            case .missing:
                "missing Tether-Signature header"
            case .malformed(let what):
                "malformed Tether-Signature header: \(what)"
            case .outsideTolerance(let skew, let tolerance):
                skew < 0
                    ? "signature timestamp is \(-skew) s in the past, beyond the tolerance of \(tolerance) s"
                    : "signature timestamp is \(skew) s in the future, beyond the tolerance of \(tolerance) s"
            case .mismatch(let scheme, let signatures):
                "no \(scheme.rawValue) signature (\(signatures) given) matches any configured secret"
            }
        }
    }

    /// A parsed header that is well formed and fresh, not yet checked against a request:
    /// what can be known before the body is read.
    public struct Header: Sendable {
        /// The signatures of one scheme.
        public struct Signatures: Sendable {
            /// The values that are hex of the right length; another value cannot match.
            public var codes: [[UInt8]] = []
            /// How many values were given, usable or not.
            public var given = 0
        }

        /// At most this many values of one scheme are taken, so one request costs a bounded
        /// amount of work.
        public static let maxSignatures = 8

        /// `t` as sent: the codes are computed over this text.
        public let timestamp: String
        /// The signatures by scheme; other schemes (`v0`, …) are ignored, as senders may add them.
        public let signatures: [Scheme: Signatures]

        /// Parses `header`, requires at least one signature of `scheme`, and checks `t`
        /// against `now` within `tolerance` both ways.
        public init(parsing header: String?, requiring scheme: Scheme, now: Date, tolerance: Duration) throws(Failure) {
            guard let header, !header.isEmpty else { throw .missing }
            var timestamp: Substring?
            var signatures: [Scheme: Signatures] = [:]
            for item in header.split(separator: ",") {
                let pair = item.trimmingCharacters(in: .whitespaces)
                guard let equals = pair.firstIndex(of: "=") else { throw .malformed("expected key=value pairs") }
                let key = pair[..<equals]
                let value = pair[pair.index(after: equals)...]
                if key == "t" {
                    guard timestamp == nil else { throw .malformed("more than one t") }
                    timestamp = Substring(value)
                } else if let signed = Scheme(rawValue: String(key)) {
                    var values = signatures[signed, default: Signatures()]
                    values.given += 1
                    if values.given > Self.maxSignatures {
                        // Only the scheme checked is refused for it; another's surplus is not read.
                        guard signed != scheme else { throw .malformed("more than \(Self.maxSignatures) \(signed.rawValue) signatures") }
                        continue
                    }
                    // A value that is not 64 hex digits cannot match; it still counts as tried.
                    if let code = Hex.decode(value), code.count == SHA256.byteCount { values.codes.append(code) }
                    signatures[signed] = values
                }
            }
            guard let timestamp else { throw .malformed("no t") }
            guard !timestamp.isEmpty, timestamp.count <= 12, timestamp.allSatisfy(\.isASCII), timestamp.allSatisfy(\.isNumber),
                let seconds = Int64(timestamp)
            else { throw .malformed("t is not a count of seconds") }
            guard signatures[scheme]?.given ?? 0 > 0 else { throw .malformed("no \(scheme.rawValue) signature") }

            let limit = Int(tolerance.components.seconds)
            let skew = seconds - TetherSignature.timestamp(now)
            guard abs(skew) <= Int64(limit) else { throw .outsideTolerance(skew: Int(skew), tolerance: limit) }
            self.timestamp = String(timestamp)
            self.signatures = signatures
        }

        /// Checks that a `v1` is, in constant time, the code of `body` under one of `secrets`.
        public func verifyV1(body: some DataProtocol, secrets: [TetherSignature]) throws(Failure) {
            var matched = false
            for secret in secrets {
                matched = secret.matches(secret.v1(timestamp: timestamp, body: body), in: self, scheme: .v1) || matched
            }
            guard matched else { throw .mismatch(scheme: .v1, signatures: signatures[.v1]?.given ?? 0) }
        }

        /// Checks that a `v2` is, in constant time, the code of the request under one of `secrets`.
        public func verifyV2(
            method: String, target: String, idempotencyKey: String?, body: some DataProtocol, secrets: [TetherSignature]
        ) throws(Failure) {
            var matched = false
            for secret in secrets {
                let code = secret.v2(timestamp: timestamp, method: method, target: target, idempotencyKey: idempotencyKey, body: body)
                matched = secret.matches(code, in: self, scheme: .v2) || matched
            }
            guard matched else { throw .mismatch(scheme: .v2, signatures: signatures[.v2]?.given ?? 0) }
        }
    }
}
