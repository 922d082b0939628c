import Foundation
import TetherConfig
#if canImport(Glibc)
import Glibc
#endif

/// The admin socket's file: its folder, its group and its mode. Who may operate is decided
/// here, by file permissions: the socket's group (`admin.group`) and mode (`admin.mode`).
enum AdminSocket {
    /// Why the socket cannot be given the configured group.
    struct GroupError: Error, CustomStringConvertible {
        let description: String
    }

    /// Makes the socket's folder and removes a stale socket left by a crash.
    static func preparePath(_ path: String) throws {
        let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var info = stat()
        if lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFSOCK { unlink(path) }
    }

    /// The id of `admin.group`, checked before anything listens: the group exists and this
    /// process may give its files to it (root, or a member: `SupplementaryGroups=` in the unit).
    static func groupID(_ name: String) throws -> gid_t {
        var entry = group()
        var result: UnsafeMutablePointer<group>?
        var buffer = [CChar](repeating: 0, count: 16_384)
        guard getgrnam_r(name, &entry, &buffer, buffer.count, &result) == 0, result != nil else {
            throw GroupError(description: "admin.group: there is no group '\(name)' on this host; create it (systemd-sysusers with tether.sysusers does)")
        }
        let gid = entry.gr_gid
        guard geteuid() == 0 || getegid() == gid || memberOf(gid) else {
            throw GroupError(
                description: "admin.group: the daemon's user is not a member of '\(name)', so it cannot give the socket to it; "
                    + "add SupplementaryGroups=\(name) to the unit")
        }
        return gid
    }

    static func memberOf(_ gid: gid_t) -> Bool {
        let count = getgroups(0, nil)
        guard count > 0 else { return false }
        var groups = [gid_t](repeating: 0, count: Int(count))
        let filled = getgroups(count, &groups)
        return filled > 0 && groups[0..<Int(filled)].contains(gid)
    }

    /// Gives the bound socket its group, then its mode: the group first, so the mode never
    /// opens the socket to the daemon's own group.
    static func secure(_ path: String, configuration: AdminConfiguration, group: gid_t?) throws {
        if let group, chown(path, uid_t.max, group) != 0 {
            throw GroupError(description: "admin.group: cannot give \(path) to group \(configuration.group ?? "\(group)"): \(String(cString: strerror(errno)))")
        }
        guard chmod(path, mode_t(configuration.mode)) == 0 else {
            throw GroupError(description: "admin.mode: cannot set mode \(String(configuration.mode, radix: 8)) on \(path): \(String(cString: strerror(errno)))")
        }
    }
}
