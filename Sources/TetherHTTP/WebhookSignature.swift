import Crypto
import Foundation
import Hummingbird
import TetherCore

/// The `Tether-Signature` header (SPEC §8): `t=<unix seconds>,v1=<hex HMAC-SHA256(secret,
/// "<t>.<raw body>")>`, with as many `v1=` as the sender has secrets in rotation.
///
/// The same scheme signs the requests Tether sends to HTTP targets (SPEC §6).
public enum WebhookSignature {
    /// The header's name.
    public static let headerName = HTTPFields.Element.Name("Tether-Signature")!

    /// At most this many `v1=` values are tried, so one request costs a bounded amount of work.
    static let maxSignatures = 8

    /// Why a signature was refused. The description names what failed and never the
    /// secret or the signature.
    public enum Failure: Error, Sendable, Hashable, CustomStringConvertible {
        /// No `Tether-Signature` header.
        case missing
        /// The header is not `t=…,v1=…`; the text says what is off.
        case malformed(String)
        /// `t` is `skew` seconds from now (negative: in the past), more than `tolerance` allows.
        case outsideTolerance(skew: Int, tolerance: Int)
        /// None of the `signatures` v1 values matches the body under any secret.
        case mismatch(signatures: Int)

        /// What failed, fit for the answer, the log and the audit record.
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
            case .mismatch(let signatures):
                "no v1 signature (\(signatures) given) matches any configured secret"
            }
        }
    }

    /// The header value signing `body` at `time` with each of `secrets`.
    public static func header(body: some DataProtocol, secrets: [[UInt8]], time: Date) -> String {
        let t = String(Int64(time.timeIntervalSince1970.rounded(.down)))
        let signatures = secrets.map { "v1=" + hex(mac(body: body, timestamp: t, key: SymmetricKey(data: $0))) }
        return (["t=\(t)"] + signatures).joined(separator: ",")
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
        let timestamp: String
        let signatures: [[UInt8]]
        let given: Int

        /// Parses `header` and checks `t` against `now` and `tolerance`.
        public init(header: String?, now: Date, tolerance: Duration) throws(Failure) {
            guard let header, !header.isEmpty else { throw .missing }
            var timestamp: Substring?
            var signatures: [[UInt8]] = []
            var given = 0
            for item in header.split(separator: ",") {
                let pair = item.trimmingCharacters(in: .whitespaces)
                guard let equals = pair.firstIndex(of: "=") else { throw .malformed("expected key=value pairs") }
                let key = pair[..<equals]
                let value = pair[pair.index(after: equals)...]
                switch key {
                case "t":
                    guard timestamp == nil else { throw .malformed("more than one t") }
                    timestamp = Substring(value)
                case "v1":
                    given += 1
                    guard given <= maxSignatures else { throw .malformed("more than \(maxSignatures) v1 signatures") }
                    // A value that is not 64 hex digits cannot match; it still counts as tried.
                    if let bytes = bytes(hex: value), bytes.count == SHA256.byteCount { signatures.append(bytes) }
                default:
                    continue  // other schemes (v0, v2, …) are ignored, as senders may add them
                }
            }
            guard let timestamp else { throw .malformed("no t") }
            guard !timestamp.isEmpty, timestamp.count <= 12, timestamp.allSatisfy(\.isASCII), timestamp.allSatisfy(\.isNumber),
                let seconds = Int64(timestamp)
            else { throw .malformed("t is not a count of seconds") }
            guard given > 0 else { throw .malformed("no v1 signature") }

            let limit = Int(tolerance.components.seconds)
            let skew = seconds - Int64(now.timeIntervalSince1970.rounded(.down))
            guard abs(skew) <= Int64(limit) else { throw .outsideTolerance(skew: Int(skew), tolerance: limit) }
            self.timestamp = String(timestamp)
            self.signatures = signatures
            self.given = given
        }

        /// Checks that at least one `v1` is, in constant time, the HMAC of `body` under at least
        /// one secret.
        public func verify(body: some DataProtocol, secrets: WebhookSecrets) throws(Failure) {
            var matched = false
            for key in secrets.keys {
                let expected = Array(mac(body: body, timestamp: timestamp, key: key))
                for signature in signatures {
                    matched = ConstantTime.equal(expected, signature) || matched
                }
            }
            guard matched else { throw .mismatch(signatures: given) }
        }
    }

    static func mac(body: some DataProtocol, timestamp: String, key: SymmetricKey) -> HashedAuthenticationCode<SHA256> {
        var hmac = HMAC<SHA256>(key: key)
        hmac.update(data: Array(timestamp.utf8))
        hmac.update(data: [UInt8(ascii: ".")])
        hmac.update(data: body)
        return hmac.finalize()
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func bytes(hex: some StringProtocol) -> [UInt8]? {
        let utf8 = Array(hex.utf8)
        guard utf8.count % 2 == 0 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
            default: nil
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(utf8.count / 2)
        var index = 0
        while index < utf8.count {
            guard let high = nibble(utf8[index]), let low = nibble(utf8[index + 1]) else { return nil }
            out.append(high << 4 | low)
            index += 2
        }
        return out
    }
}
