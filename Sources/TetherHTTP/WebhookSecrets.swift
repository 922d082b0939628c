import Crypto
import Foundation

/// The HMAC secrets an HR webhook may be signed with. Several are accepted at once so a
/// secret can be rotated: add the new one, switch the sender, remove the old one.
///
/// The bytes never appear in descriptions, logs or answers.
public struct WebhookSecrets: Sendable, CustomStringConvertible {
    let keys: [SymmetricKey]

    /// Secrets given as raw bytes; nil when there is none or one is empty.
    public init?(_ secrets: [[UInt8]]) {
        guard !secrets.isEmpty, secrets.allSatisfy({ !$0.isEmpty }) else { return nil }
        keys = secrets.map { SymmetricKey(data: $0) }
    }

    /// Secrets as read from their files, one secret per file: a trailing line ending is not
    /// part of the secret. Nil when there is no file or a file holds nothing.
    public init?(fileContents: [Data]) {
        self.init(fileContents.map { Array(Self.trimmingLineEnding($0)) })
    }

    /// How many secrets are accepted.
    public var count: Int { keys.count }

    /// Names the count, never the bytes.
    public var description: String { "WebhookSecrets(\(keys.count) secret\(keys.count == 1 ? "" : "s"), redacted)" }

    static func trimmingLineEnding(_ data: Data) -> Data {
        var end = data.endIndex
        while end > data.startIndex, data[end - 1] == UInt8(ascii: "\n") || data[end - 1] == UInt8(ascii: "\r") {
            end -= 1
        }
        return data[data.startIndex..<end]
    }
}

/// The bearer tokens `POST /v1/check` accepts, kept only as SHA-256 digests and compared in
/// constant time.
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
enum ConstantTime {
    /// Whether `a` and `b` hold the same bytes; time depends only on their lengths.
    static func equal(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0
    }
}
