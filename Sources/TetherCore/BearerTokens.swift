import Crypto
import Foundation

/// Bearer tokens (`/v1/check`, SCIM), kept only as SHA-256 digests and compared in constant
/// time; never described, logged or answered.
public struct BearerTokens: Sendable, CustomStringConvertible {
    let digests: [[UInt8]]

    /// Tokens given one by one; nil when there is none. Surrounding whitespace is ignored.
    public init?(_ tokens: [String]) {
        let cleaned = tokens.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
        guard !cleaned.isEmpty else { return nil }
        digests = cleaned.map { Array(SHA256.hash(data: Data($0.utf8))) }
    }

    /// Tokens as read from a token file: one per line, blank lines and surrounding whitespace
    /// ignored. Nil when the file holds no token.
    public init?(fileContents: Data) {
        let text = String(decoding: fileContents, as: UTF8.self)
        self.init(text.split(whereSeparator: \.isNewline).map(String.init))
    }

    /// How many tokens are accepted.
    public var count: Int { digests.count }

    /// Names the count, never the tokens.
    public var description: String { "BearerTokens(\(digests.count) token\(digests.count == 1 ? "" : "s"), redacted)" }

    /// Whether `presented` is one of the tokens. Every token is compared, each in constant
    /// time over fixed-length digests, so timing tells nothing about which or how much matched.
    public func accepts(_ presented: some StringProtocol) -> Bool {
        let digest = Array(SHA256.hash(data: Data(presented.utf8)))
        var matched = false
        for candidate in digests {
            matched = ConstantTime.equal(candidate, digest) || matched
        }
        return matched
    }
}

/// Comparison that takes the same time whatever the contents.
public enum ConstantTime {
    /// Whether `a` and `b` hold the same bytes; time depends only on their lengths.
    public static func equal(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0
    }
}
