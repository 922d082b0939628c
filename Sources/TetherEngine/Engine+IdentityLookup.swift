import TetherCore
import TetherStore

extension Engine {
    /// Whether an identity of any source has this userName (a SCIM Agent's owner may name
    /// one by it). Reads the store; waits for no decision in progress.
    public func identityExists(userName: String) async throws -> Bool {
        try await store.inspect { reads in try reads.identity(userName: userName) != nil }
    }
}
