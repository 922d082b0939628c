import Crypto
import Foundation
import Synchronization

/// Bearer tokens (`/v1/check`, SCIM), kept only as SHA-256 digests with a name each and
/// compared in constant time; never described, logged or answered. The name (`caller` in a
/// recorded check decision) is not secret.
public struct BearerTokens: Sendable, CustomStringConvertible {
    let digests: [[UInt8]]
    /// The name of each token, in the order of `digests`.
    let names: [String]
    /// Tells this set from every other one the process read, a reload's included: a caller
    /// accepted by a set with this number need not be checked again while it is in force.
    public let generation: UInt64 = Self.generations.wrappingAdd(1, ordering: .relaxed).newValue
    private static let generations = Atomic<UInt64>(0)

    /// A token file line that cannot be read: where and why, never the line itself.
    public struct Malformed: Error, CustomStringConvertible, Sendable, Equatable {
        /// 1-based line number in the file.
        public let line: Int
        public let reason: String
        public var description: String { "line \(line): \(reason)" }

        public init(line: Int, reason: String) {
            self.line = line
            self.reason = reason
        }
    }

    /// Tokens given one by one, named `token-1`, `token-2`, … in that order; nil when there
    /// is none. Surrounding whitespace is ignored.
    public init?(_ tokens: [String]) {
        let cleaned = tokens.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
        guard !cleaned.isEmpty else { return nil }
        digests = cleaned.map(Self.digest)
        names = cleaned.indices.map { "token-\($0 + 1)" }
    }

    /// Tokens as read from a token file: one per line, either `TOKEN` or `NAME TOKEN`
    /// (separated by spaces or tabs). A bare token is named `token-<line number>`. Blank lines
    /// are ignored. Nil when the file holds no token.
    ///
    /// Throws ``Malformed`` for a line of more than two fields, a name used twice, or a name
    /// of the form `token-<n>` given to another line than line n.
    public init?(fileContents: Data) throws(Malformed) {
        let text = String(decoding: fileContents, as: UTF8.self)
        var digests: [[UInt8]] = []
        var names: [String] = []
        var seen: Set<String> = []
        for (offset, line) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
            let number = offset + 1
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" })
            if fields.isEmpty { continue }
            guard fields.count <= 2 else {
                throw Malformed(line: number, reason: "expected TOKEN or NAME TOKEN, found \(fields.count) fields")
            }
            let name = fields.count == 2 ? String(fields[0]) : "token-\(number)"
            if fields.count == 2, name.hasPrefix("token-"), name != "token-\(number)" {
                throw Malformed(line: number, reason: "the name \(name) is kept for the bare token on that line; choose another")
            }
            guard seen.insert(name).inserted else {
                throw Malformed(line: number, reason: "the name \(name) is used by an earlier line")
            }
            names.append(name)
            digests.append(Self.digest(fields[fields.count - 1]))
        }
        guard !digests.isEmpty else { return nil }
        self.digests = digests
        self.names = names
    }

    private static func digest(_ token: some StringProtocol) -> [UInt8] { Array(SHA256.hash(data: Data(token.utf8))) }

    /// How many tokens are accepted.
    public var count: Int { digests.count }

    /// Names the count, never the tokens.
    public var description: String { "BearerTokens(\(digests.count) token\(digests.count == 1 ? "" : "s"), redacted)" }

    /// The name of the token `presented` is, nil when it is none of them. Every token is
    /// compared, each in constant time over fixed-length digests, so timing tells nothing
    /// about which or how much matched.
    public func accepts(_ presented: some StringProtocol) -> String? {
        let digest = Self.digest(presented)
        var matched = -1
        for (index, candidate) in digests.enumerated() {
            // Branch-free choice: the last match wins, and every token is compared.
            let equal = ConstantTime.equal(candidate, digest)
            matched = equal ? index : matched
        }
        return matched >= 0 ? names[matched] : nil
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
