import Foundation
import GRDB
import TetherCore

extension SQLiteStateStore {
    public func event(id: String) async throws -> LifecycleEvent? {
        try await read { db in
            try String.fetchOne(db, sql: "SELECT payload FROM events WHERE id = ?", arguments: [id])
                .map { try Self.decode(LifecycleEvent.self, $0, what: "event \(id)") }
        }
    }

    public func revocationWindow(_ source: Source) async throws -> RevocationWindow? {
        try await read { db in
            try String.fetchOne(db, sql: "SELECT data FROM safety_windows WHERE source = ?", arguments: [source.rawValue])
                .map { try Self.decode(RevocationWindow.self, $0, what: "revocation window of \(source.rawValue)") }
        }
    }
}
