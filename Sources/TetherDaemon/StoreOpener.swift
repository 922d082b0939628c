import Foundation
import Logging
import TetherConfig
import TetherCore
import TetherStore

/// Opens the store the configuration names: the SQLite file (the default), or the PostgreSQL
/// database several daemons share (`store.postgres`, SPEC §14).
package enum StoreOpener {
    /// The connection settings `configuration` gives, the password read from its file. Throws
    /// ``SecretFile/Unusable`` naming the file when it cannot be read.
    package static func settings(_ configuration: PostgresStoreConfiguration) throws -> PostgresSettings {
        let password = try configuration.passwordFile.map { String(decoding: try SecretFile.read($0), as: UTF8.self) }
        return PostgresSettings(
            location: configuration.url, password: password, tls: configuration.tls, caFile: configuration.caFile,
            poolSize: configuration.poolSize)
    }

    /// Opens, creating and migrating it if needed, the store `configuration` names.
    /// - Parameter upgrading: called with the steps an upgrade of an existing SQLite store takes,
    ///   before it starts.
    package static func open(
        _ configuration: StoreConfiguration, postgres: PostgresSettings?, logger: Logger, upgrading: (([String]) -> Void)? = nil
    ) async throws -> any DaemonStore {
        if let postgres {
            return try await PostgresStateStore(settings: postgres, logger: logger)
        }
        return try SQLiteStateStore(path: configuration.sqlite, syncEachCommit: configuration.synchronous == .full, upgrading: upgrading)
    }
}
