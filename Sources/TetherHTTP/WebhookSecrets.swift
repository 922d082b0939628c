import Foundation
import TetherCore

/// The HMAC secrets an HR webhook may be signed with. Several are accepted at once so a
/// secret can be rotated: add the new one, switch the sender, remove the old one.
///
/// The bytes never appear in descriptions, logs or answers.
public struct WebhookSecrets: Sendable, CustomStringConvertible {
    let signatures: [TetherSignature]

    /// Secrets given as raw bytes; nil when there is none or one is empty.
    public init?(_ secrets: [[UInt8]]) {
        guard !secrets.isEmpty, secrets.allSatisfy({ !$0.isEmpty }) else { return nil }
        signatures = secrets.map { TetherSignature(secret: $0) }
    }

    /// Secrets as read from their files, one secret per file, trimmed as ``SecretFile``
    /// trims (a trailing line ending is not part of the secret). Nil when there is no file or
    /// a file holds nothing.
    public init?(fileContents: [Data]) {
        self.init(fileContents.map { Array(SecretFile.trimmed($0)) })
    }

    /// How many secrets are accepted.
    public var count: Int { signatures.count }

    /// Names the count, never the bytes.
    public var description: String { "WebhookSecrets(\(signatures.count) secret\(signatures.count == 1 ? "" : "s"), redacted)" }
}
