import Foundation
import TetherConfig
import TetherCore

/// Hands reviewers' links to `reviews.notify` (SPEC §18): one `POST {url}` per reviewer with
/// the link as JSON, signed like every request to a target (`Tether-Signature`), with
/// `Idempotency-Key: review:<campaign>:<reviewer>` so a resend is recognised. What the
/// target does with it (an e-mail, a chat message) is its own business.
public struct ReviewNotifier: Sendable {
    /// One reviewer's link, as the target receives it.
    public struct Message: Codable, Sendable, Hashable {
        public var campaign: String
        public var name: String
        public var due: String
        public var reviewer: String
        public var displayName: String?
        public var email: String?
        public var items: Int
        public var url: String

        public init(
            campaign: String, name: String, due: String, reviewer: String, displayName: String?, email: String?, items: Int,
            url: String
        ) {
            self.campaign = campaign
            self.name = name
            self.due = due
            self.reviewer = reviewer
            self.displayName = displayName
            self.email = email
            self.items = items
            self.url = url
        }
    }

    let configuration: TargetConfiguration

    /// - Throws: ``TargetError`` when the URL or the secret cannot be used: `serve` refuses to
    /// start rather than find out at the first campaign.
    public init(configuration: TargetConfiguration) throws {
        _ = try TargetSignature.readSecret(path: configuration.secretFile, target: configuration.id)
        guard HTTPEndpoint(configuration.url) != nil else {
            throw TargetError(
                .configuration, target: configuration.id, "url '\(configuration.url)' is not an http:// or https:// URL with a host")
        }
        self.configuration = configuration
    }

    /// Sends each message once; returns, for each that the target did not take, the reviewer
    /// and why. The secret is read now, so a rotated one is used at once.
    public func send(_ messages: [Message]) async -> [(reviewer: String, reason: String)] {
        let target: HTTPGrantTarget
        do {
            target = try HTTPGrantTarget(configuration: configuration)
        } catch {
            return messages.map { ($0.reviewer, "\(error)") }
        }
        var failed: [(reviewer: String, reason: String)] = []
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        for message in messages {
            // Plain strings and a number: encoding cannot fail.
            let body = Array(try! encoder.encode(message))
            let outcome = await target.post(body, idempotencyKey: "review:\(message.campaign):\(message.reviewer)")
            if case .unavailable(let reason, _) = outcome { failed.append((message.reviewer, reason)) }
            if case .refused(let reason, _) = outcome { failed.append((message.reviewer, reason)) }
        }
        await target.shutdown()
        return failed
    }
}
