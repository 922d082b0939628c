import Synchronization
import TetherCore

/// The bearer tokens SCIM clients may present, held so a reload can rotate them in place:
/// add the new token to the file, reload, switch the client, remove the old one, reload.
public final class SCIMCredentials: Sendable {
    private let tokens: Mutex<BearerTokens?>

    /// Tokens as read from `sources.scim.tokenFile`; none refuses every request.
    public init(tokens: [String]) {
        self.tokens = Mutex(BearerTokens(tokens))
    }

    /// Replaces the tokens; requests already past authentication are unaffected.
    public func update(tokens: [String]) {
        let next = BearerTokens(tokens)
        self.tokens.withLock { $0 = next }
    }

    /// Whether `presented` is one of the tokens, compared in constant time.
    public func accepts(_ presented: some StringProtocol) -> Bool {
        tokens.withLock { $0?.accepts(presented) != nil }
    }
}
