import Foundation

/// A complete read of a directory's users, every page of it successful.
public struct DirectorySnapshot: Sendable {
    public var source: Source
    public var users: [IdentityFacts]
    /// The resume point this read brings the store up to (an RFC 4533 cookie), if any.
    public var cookie: Data?
    /// `syncrepl` or `poll`.
    public var mode: String

    public init(source: Source, users: [IdentityFacts], cookie: Data? = nil, mode: String) {
        self.source = source
        self.users = users
        self.cookie = cookie
        self.mode = mode
    }
}
