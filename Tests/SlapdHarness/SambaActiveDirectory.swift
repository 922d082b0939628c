import Foundation

/// A throwaway Active Directory domain controller (Samba, realm EXAMPLE.TEST), for the tests
/// that check what Tether's LDAP source does against AD: `objectGUID`, `userAccountControl`,
/// polling by update sequence number, no RFC 4533. `scripts/lib/samba-ad-start` provisions it
/// in a temporary folder without systemd and starts `samba` in its own process group on a
/// free loopback address (Samba's LDAP port is fixed at 389); `destroy()` stops it and
/// removes every file. Needs root and the Samba AD packages (`scripts/test-ad` installs them).
public final class SambaActiveDirectory: @unchecked Sendable {
    public static let baseDN = "DC=example,DC=test"

    public let folder: URL
    public let url: String
    public let bindDN: String
    public let password: String

    private init(folder: URL, url: String, bindDN: String, password: String) {
        self.folder = folder
        self.url = url
        self.bindDN = bindDN
        self.password = password
    }

    /// Whether the server can be started here: root, and Samba's AD domain controller installed.
    public static var isAvailable: Bool {
        getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/samba")
            && FileManager.default.fileExists(atPath: "/usr/share/samba/setup/ad-schema")
    }

    /// Provisions and starts a domain controller, then adds the entries of `ldif`.
    public static func start(ldif: String) throws -> SambaActiveDirectory {
        // Short: Samba's unix sockets live under the folder.
        let folder = URL(fileURLWithPath: "/tmp/tether-ad-\(UUID().uuidString.prefix(8))")
        do {
            try runLibraryScript("samba-ad-start", [folder.path], timeout: .seconds(120))
            let environment = try String(contentsOf: folder.appendingPathComponent("env"), encoding: .utf8)
            var values: [String: String] = [:]
            for line in environment.split(separator: "\n") {
                let pair = line.split(separator: "=", maxSplits: 1).map(String.init)
                if pair.count == 2 { values[pair[0]] = pair[1] }
            }
            guard let url = values["URL"], let bindDN = values["BIND_DN"], let password = values["BIND_PW"] else {
                throw SlapdError("samba-ad-start wrote no URL, BIND_DN or BIND_PW: \(environment)")
            }
            let server = SambaActiveDirectory(folder: folder, url: url, bindDN: bindDN, password: password)
            try server.add(ldif)
            return server
        } catch {
            try? runLibraryScript("samba-ad-stop", [folder.path], timeout: .seconds(60))
            throw error
        }
    }

    /// Stops every process of the server (SIGSTOP to its process group) without closing its
    /// sockets: connections stay open and requests go unanswered, as with a hung domain
    /// controller. ``resume()`` continues it.
    public func pause() throws {
        try signal(SIGSTOP)
    }

    /// Continues a server stopped by ``pause()``.
    public func resume() throws {
        try signal(SIGCONT)
    }

    private func signal(_ number: Int32) throws {
        let text = try String(contentsOf: folder.appendingPathComponent("samba.pid"), encoding: .utf8)
        guard let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), pid > 1 else {
            throw SlapdError("no samba process id in \(folder.path)/samba.pid: \(text)")
        }
        // samba-ad-start runs samba under setsid: its process id is its process group's.
        guard kill(-pid, number) == 0 else { throw SlapdError("cannot signal samba's process group \(pid): errno \(errno)") }
    }

    /// Stops the server and removes its folder.
    public func destroy() {
        guard FileManager.default.fileExists(atPath: folder.path) else { return }
        try? runLibraryScript("samba-ad-stop", [folder.path], timeout: .seconds(60))
    }

    deinit { destroy() }
}
