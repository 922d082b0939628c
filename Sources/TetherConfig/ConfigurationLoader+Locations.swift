import Foundation
import Yams

extension ConfigurationLoader {
    /// Where the store and the admin socket are, read leniently: operators must reach a
    /// running daemon (to see why a reload was rejected) even while the file on disk is broken.
    /// Falls back to the defaults for anything it cannot read.
    public static func locations(path: String) -> (store: String, socket: String) {
        let found = lenientLocations(path: path)
        return (found.store, found.socket)
    }

    /// Whether the file at `path` names a PostgreSQL store (`store.postgres`), read leniently.
    public static func namesPostgresStore(path: String) -> Bool { lenientLocations(path: path).postgres }

    private static func lenientLocations(path: String) -> (store: String, socket: String, postgres: Bool) {
        let defaults = Configuration()
        let absolute = ConfigurationReader.absolutePath(path, relativeTo: FileManager.default.currentDirectoryPath)
        let folder = ConfigurationReader.absolutePath("..", relativeTo: absolute)
        guard let text = try? String(contentsOfFile: absolute, encoding: .utf8),
            let root = (try? Yams.load(yaml: text)) as? [String: Any]
        else { return (defaults.store.sqlite, defaults.admin.socket, false) }
        func value(_ section: String, _ key: String) -> String? {
            ((root[section] as? [String: Any])?[key] as? String).map { ConfigurationReader.absolutePath($0, relativeTo: folder) }
        }
        let postgres = (root["store"] as? [String: Any])?["postgres"] != nil
        return (value("store", "sqlite") ?? defaults.store.sqlite, value("admin", "socket") ?? defaults.admin.socket, postgres)
    }
}
