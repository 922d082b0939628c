import Crypto
import Foundation

/// The token in a reviewer's link (SPEC §18): the campaign, the reviewer and when it expires,
/// signed with the campaign's link key (HMAC-SHA256). It is a bearer credential: it is never
/// logged, and it stops working at the expiry, when the campaign closes, or for anyone but
/// the reviewer it names.
public struct ReviewLink: Sendable, Hashable {
    public var campaign: String
    /// The reviewer's userName.
    public var reviewer: String
    public var expires: Date

    public init(campaign: String, reviewer: String, expires: Date) {
        self.campaign = campaign
        self.reviewer = reviewer
        self.expires = expires
    }

    /// Why a token was refused: each is a 403 to the browser, with no more said.
    public enum Refusal: Error, Sendable, Hashable {
        /// Not a token: wrong shape, bad encoding.
        case malformed
        /// The signature does not match the campaign's key.
        case forged
        case expired
    }

    /// The part of a token before the signature; the campaign id is readable without the key,
    /// which is looked up by it.
    private struct Payload: Codable {
        var c: String
        var r: String
        var e: Int64
    }

    /// `<payload>.<signature>`, both base64url without padding.
    public func token(key: Data) -> String {
        let payload = Payload(c: campaign, r: reviewer, e: Int64(expires.timeIntervalSince1970.rounded(.down)))
        // Keys in order, so the same link always has the same token. The encoder cannot fail
        // on three plain fields.
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let text = Self.base64URL(try! encoder.encode(payload))
        return text + "." + Self.base64URL(Data(Self.mac(text, key: key)))
    }

    /// The campaign a token names, read without checking it: which key to verify it with.
    public static func campaign(of token: String) -> String? {
        try? payload(of: token).c
    }

    /// The link `token` carries, if `key` signed it and it has not expired at `now`.
    public static func verify(_ token: String, key: Data, now: Date) throws(Refusal) -> ReviewLink {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, let signature = Self.data(base64URL: String(parts[1])) else { throw .malformed }
        let payload = try payload(of: token)
        guard HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: Data(parts[0].utf8), using: SymmetricKey(data: key))
        else { throw .forged }
        let link = ReviewLink(campaign: payload.c, reviewer: payload.r, expires: Date(timeIntervalSince1970: Double(payload.e)))
        guard now < link.expires else { throw .expired }
        return link
    }

    /// The form token for a browser holding `nonce` in its cookie: what a form posted by this
    /// reviewer's page must carry (cross-site request forgery protection).
    public func formToken(nonce: String, key: Data) -> String {
        Self.base64URL(Data(Self.mac("form\n\(campaign)\n\(reviewer)\n\(nonce)", key: key)))
    }

    /// Whether `token` is the form token for `nonce`, compared in constant time.
    public func acceptsFormToken(_ token: String, nonce: String, key: Data) -> Bool {
        guard !nonce.isEmpty, let code = Self.data(base64URL: token) else { return false }
        return HMAC<SHA256>.isValidAuthenticationCode(
            code, authenticating: Data("form\n\(campaign)\n\(reviewer)\n\(nonce)".utf8), using: SymmetricKey(data: key))
    }

    private static func payload(of token: String) throws(Refusal) -> Payload {
        guard let dot = token.firstIndex(of: "."), let data = Self.data(base64URL: String(token[..<dot])),
            let payload = try? JSONDecoder().decode(Payload.self, from: data)
        else { throw .malformed }
        return payload
    }

    private static func mac(_ text: String, key: Data) -> HashedAuthenticationCode<SHA256> {
        HMAC<SHA256>.authenticationCode(for: Data(text.utf8), using: SymmetricKey(data: key))
    }

    /// Base64url without padding (RFC 4648 §5).
    public static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func data(base64URL text: String) -> Data? {
        // Only the base64url alphabet: no padding, no `+` or `/`.
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 < 128 }), !text.contains(where: { "=+/".contains($0) }) else { return nil }
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        return Data(base64Encoded: base64)
    }
}
