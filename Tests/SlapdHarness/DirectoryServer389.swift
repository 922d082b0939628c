import Foundation

/// A throwaway 389 Directory Server on a free loopback port, for the tests that check what
/// Tether's LDAP source does against 389-DS (Content Synchronization, `nsUniqueId`,
/// `nsAccountLock`). `scripts/lib/ds389-start` creates the instance in a temporary folder
/// without systemd and starts `ns-slapd` as a process of its own; `destroy()` stops it and
/// removes every file. Needs root and the `389-ds-base` package (`scripts/test-389ds`
/// installs it).
public final class DirectoryServer389: @unchecked Sendable {
    public static let suffix = "dc=example,dc=com"
    public static let rootDN = "cn=Directory Manager"
    public static let rootPassword = "Secret123!"

    public let port: Int
    public let folder: URL
    public var url: String { "ldap://127.0.0.1:\(port)/" }

    private init(port: Int, folder: URL) {
        self.port = port
        self.folder = folder
    }

    /// Whether the server can be started here: root, and `389-ds-base` installed.
    public static var isAvailable: Bool {
        getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/dscreate")
            && FileManager.default.isExecutableFile(atPath: "/usr/sbin/ns-slapd")
    }

    /// Creates and starts an instance holding the suffix entry, then adds `ldif`.
    public static func start(ldif: String) throws -> DirectoryServer389 {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tether-389-\(UUID().uuidString.prefix(8))")
        let server = DirectoryServer389(port: try freePort(), folder: folder)
        do {
            try runLibraryScript("ds389-start", [String(server.port), folder.path], timeout: .seconds(120))
            try server.add(ldif)
        } catch {
            server.destroy()
            throw error
        }
        return server
    }

    /// Reads `attributes` of the entry `dn` as the root DN (operational ones by name).
    public func read(_ dn: String, _ attributes: [String]) throws -> String {
        try Slapd.run(
            "/usr/bin/ldapsearch",
            ["-x", "-LLL", "-o", "ldif-wrap=no", "-H", url, "-D", Self.rootDN, "-w", Self.rootPassword, "-b", dn, "-s", "base"] + attributes)
    }

    /// Stops the server and removes its instance.
    public func destroy() {
        guard FileManager.default.fileExists(atPath: folder.path) else { return }
        try? runLibraryScript("ds389-stop", [folder.path], timeout: .seconds(60))
    }

    deinit { destroy() }
}
