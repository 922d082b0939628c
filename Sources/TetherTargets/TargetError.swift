/// An error from talking to a grant target: what failed, on which target, and the cause.
public struct TargetError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure it is.
    public enum Code: Sendable, Hashable {
        /// The target's configuration cannot be used (URL, secret file).
        case configuration
        /// No connection: refused, unreachable, name not resolved, TLS handshake failed.
        case unreachable
        /// The connection broke before the answer was complete (reset, closed).
        case connectionLost
        /// No complete answer within the target's timeout.
        case timeout
        /// An answer that is not what the contract says (status, JSON, paging).
        case badResponse
    }

    /// What kind of failure it is.
    public var code: Code
    /// The target's id.
    public var target: String
    /// What happened, and what to do about it.
    public var message: String
    /// The error underneath, if any.
    public var underlying: (any Error)?

    /// An error about `target`.
    public init(_ code: Code, target: String, _ message: String, underlying: (any Error)? = nil) {
        self.code = code
        self.target = target
        self.message = message
        self.underlying = underlying
    }

    /// `target <id>: <message>: <underlying>`.
    public var description: String {
        "target \(target): " + (underlying.map { "\(message): \($0)" } ?? message)
    }
}
