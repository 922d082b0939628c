import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Operators are named in the audit log by their Unix user, from the admin socket's peer
/// credentials, when the daemon runs as its unprivileged user under the shipped unit's sandbox
/// (systemd is not PID 1 here: the unit's user settings are reproduced with real users and, where
/// the unit asks for `PrivateUsers=`, the same user namespace). A peer the daemon cannot name is
/// refused and nothing is recorded. The admin socket belongs to `admin.group`.
@Suite(.serialized, .enabled(if: getuid() == 0, "creates users and switches to them: needs root"))
struct OperatorIdentityTests {
    static let daemonUser = "tether-test-daemon"
    static let operatorUser = "tether-test-op"
    static let operatorsGroup = "tether-test-ops"

    static let config = DaemonProcess.supportCopilot

    // MARK: The shipped unit

    @Test func theShippedUnitsSandboxRecordsTheOperatorsUserName() async throws {
        let unit = try UnitSandbox.shipped()
        let daemonIDs = try await Self.ensureUsers()
        let operatorsGID = try #require(Self.groupID(Self.operatorsGroup))
        let folder = try Self.folderOwned(by: daemonIDs)
        // The unit's SupplementaryGroups= name the operators' group; here it is the test's.
        let supplementary = unit.supplementaryGroups.isEmpty ? [] : [operatorsGID]
        let daemon = try DaemonProcess(
            config: Self.config, folder: folder, admin: #"mode: "0660", group: \#(Self.operatorsGroup)"#,
            launcher: try Self.launcher(
                folder: folder, uid: daemonIDs.uid, gid: daemonIDs.gid, groups: supplementary, privateUsers: unit.privateUsers))
        defer { daemon.stop() }
        try await daemon.waitUntilReady()

        // The socket belongs to the operators' group with admin.mode.
        var info = stat()
        #expect(stat(daemon.socketPath, &info) == 0)
        #expect(info.st_gid == operatorsGID)
        #expect(info.st_uid == daemonIDs.uid)
        #expect(info.st_mode & 0o777 == 0o660)

        let resync = try await Self.asOperator(daemon, ["resync"])
        #expect(resync.code == 0, "the operator was refused: \(resync.stderr)\n\(daemon.log())")
        let reactivate = try await Self.asOperator(daemon, ["identities", "reactivate", "ghost"])
        #expect(!reactivate.stderr.contains("cannot tell which Unix user"), "\(reactivate.stderr)")
        let audit = try await Self.audit(folder)
        #expect(audit.contains(#""action":"resync.requested""#))
        #expect(audit.contains(#""actor":"operator:\#(Self.operatorUser)""#), "\(audit)")
        #expect(!audit.contains("operator:nobody") && !audit.contains("operator:unknown"))

        // Someone outside the operators' group cannot reach the socket at all.
        let outsider = try await DaemonProcess.run(
            ["--reuid=65534", "--regid=65534", "--clear-groups", DaemonProcess.binary.path, "status", "--config", daemon.configPath],
            executable: "/usr/bin/setpriv")
        #expect(outsider.code == 1)
        #expect(outsider.stderr.contains(daemon.socketPath) && outsider.stderr.contains("Permission denied"), "\(outsider.stderr)")
    }

    // MARK: Peers that cannot be named

    @Test func aPeerOutsideTheDaemonsUserNamespaceIsRefusedAndNothingIsRecorded() async throws {
        let daemonIDs = try await Self.ensureUsers()
        let folder = try Self.folderOwned(by: daemonIDs)
        // What PrivateUsers=yes does: only root and the daemon's user exist inside; every other
        // caller arrives as the kernel's overflow uid.
        let daemon = try DaemonProcess(
            config: Self.config, folder: folder, admin: #"mode: "0666""#,
            launcher: try Self.launcher(folder: folder, uid: daemonIDs.uid, gid: daemonIDs.gid, groups: [], privateUsers: true))
        defer { daemon.stop() }
        try await daemon.waitUntilReady()

        for command in [["resync"], ["approve", "p_0123456789abcdef"], ["reject", "p_0123456789abcdef"], ["identities", "reactivate", "ghost"],
            ["agents", "sponsor", "support-copilot", "jdoe"], ["reload"]]
        {
            let result = try await Self.asOperator(daemon, command)
            #expect(result.code != 0, "\(command) was accepted")
            #expect(result.stderr.contains("cannot tell which Unix user"), "\(command): \(result.stderr)")
            #expect(result.stderr.contains("overflow uid"), "\(command): \(result.stderr)")
        }
        // Reading is not a change: status still answers the operator.
        #expect(try await Self.asOperator(daemon, ["status", "--json"]).code == 0)
        // Root is mapped and named.
        #expect(try await daemon.cli(["resync"]).code == 0)

        let audit = try await Self.audit(folder)
        #expect(!audit.contains("operator:nobody") && !audit.contains("operator:unknown") && !audit.contains("operator:uid"), "\(audit)")
        #expect(!audit.contains(Self.operatorUser), "nothing is recorded for the refused operator")
        #expect(audit.contains(#""actor":"operator:root""#))
    }

    @Test func aPeerWithNoUserNameIsRefusedAndNothingIsRecorded() async throws {
        let daemon = try DaemonProcess(config: Self.config, admin: #"mode: "0666""#)
        defer { daemon.stop() }
        try await daemon.waitUntilReady()
        // A uid with no entry in the user database.
        var uid: uid_t = 54_321
        while getpwuid(uid) != nil { uid += 1 }
        let result = try await DaemonProcess.run(
            ["--reuid=\(uid)", "--regid=\(uid)", "--clear-groups", DaemonProcess.binary.path, "resync", "--config", daemon.configPath],
            executable: "/usr/bin/setpriv")
        #expect(result.code != 0)
        #expect(result.stderr.contains("uid \(uid) has no user name"), "\(result.stderr)")
        let audit = try await daemon.cli(["audit", "--json"]).stdout
        #expect(!audit.contains("resync.requested"), "\(audit)")
        #expect(!audit.contains("operator:uid"))
    }

    @Test func anUnknownSocketGroupIsABadConfigurationNamingIt() async throws {
        let folder = try DaemonProcess.folder()
        let daemon = try DaemonProcess(config: Self.config, folder: folder, admin: #"mode: "0660", group: no-such-group-here"#)
        defer { daemon.stop() }
        #expect(await daemon.waitForExit(timeout: 30) == 2)
        #expect(daemon.log().contains("admin.group: there is no group 'no-such-group-here'"), "\(daemon.log())")
        #expect(!FileManager.default.fileExists(atPath: daemon.socketPath))
    }

    // MARK: Helpers

    /// Runs the CLI as the operator: a non-root user in the operators' group.
    static func asOperator(_ daemon: DaemonProcess, _ arguments: [String]) async throws -> CommandResult {
        try await DaemonProcess.run(
            ["-u", operatorUser, "--", DaemonProcess.binary.path] + arguments + ["--config", daemon.configPath],
            executable: "/usr/sbin/runuser")
    }

    /// The audit log as JSON Lines, read by root from the store file.
    static func audit(_ folder: URL) async throws -> String {
        let result = try await DaemonProcess.run(["audit", "--json", "--store", folder.appendingPathComponent("state/tether.db").path])
        guard result.code == 0 else { throw DaemonTestError("audit failed: \(result.stderr)") }
        return result.stdout
    }

    /// Creates the daemon's user, the operator and the operators' group once; returns the daemon's ids.
    static func ensureUsers() async throws -> (uid: uid_t, gid: gid_t) {
        let script = """
            set -e
            getent group \(operatorsGroup) >/dev/null || groupadd --system \(operatorsGroup)
            id -u \(daemonUser) >/dev/null 2>&1 || useradd --system --user-group --no-create-home --shell /usr/sbin/nologin \(daemonUser)
            id -u \(operatorUser) >/dev/null 2>&1 || useradd --system --user-group --no-create-home --shell /usr/sbin/nologin \(operatorUser)
            usermod -a -G \(operatorsGroup) \(operatorUser)
            """
        let result = try await DaemonProcess.run(["-c", script], executable: "/bin/sh")
        guard result.code == 0, let entry = getpwnam(daemonUser) else {
            throw DaemonTestError("cannot create the test users: \(result.stderr)")
        }
        return (entry.pointee.pw_uid, entry.pointee.pw_gid)
    }

    static func groupID(_ name: String) -> gid_t? { getgrnam(name).map { $0.pointee.gr_gid } }

    /// A daemon folder the daemon's user owns (its store and socket are created there).
    static func folderOwned(by ids: (uid: uid_t, gid: gid_t)) throws -> URL {
        let folder = try DaemonProcess.folder()
        guard chown(folder.path, ids.uid, ids.gid) == 0 else { throw DaemonTestError("chown \(folder.path) failed") }
        return folder
    }

    /// The command that starts the daemon as `uid`/`gid` with `groups`; with `privateUsers`, in a
    /// new user namespace that maps only root and the daemon's user and group, as systemd's
    /// `PrivateUsers=yes` does.
    static func launcher(folder: URL, uid: uid_t, gid: gid_t, groups: [gid_t], privateUsers: Bool) throws -> [String] {
        let script = folder.appendingPathComponent("sandbox.py").path
        try sandboxScript.write(toFile: script, atomically: true, encoding: .utf8)
        return ["/usr/bin/python3", script, "\(uid)", "\(gid)", groups.map(String.init).joined(separator: ","), privateUsers ? "1" : "0"]
    }

    /// Switches to the daemon's user, first entering a user namespace like PrivateUsers=yes when
    /// asked: a helper child, still root outside, writes the namespace's maps.
    static let sandboxScript = #"""
        import ctypes, os, sys
        uid, gid = int(sys.argv[1]), int(sys.argv[2])
        groups = [int(g) for g in sys.argv[3].split(",") if g]
        private_users = sys.argv[4] == "1"
        argv = sys.argv[5:]
        if private_users:
            libc = ctypes.CDLL(None, use_errno=True)
            unshared_r, unshared_w = os.pipe()
            mapped_r, mapped_w = os.pipe()
            helper = os.fork()
            if helper == 0:
                os.read(unshared_r, 1)
                target = os.getppid()
                with open(f"/proc/{target}/uid_map", "w") as f:
                    f.write(f"0 0 1\n{uid} {uid} 1\n")
                with open(f"/proc/{target}/gid_map", "w") as f:
                    f.write(f"0 0 1\n{gid} {gid} 1\n")
                os.write(mapped_w, b"x")
                os._exit(0)
            if libc.unshare(0x10000000) != 0:  # CLONE_NEWUSER
                sys.exit("unshare: " + os.strerror(ctypes.get_errno()))
            os.write(unshared_w, b"x")
            os.read(mapped_r, 1)
            os.waitpid(helper, 0)
        os.setgroups(groups)
        os.setgid(gid)
        os.setuid(uid)
        os.execv(argv[0], argv)
        """#
}

/// The settings of the shipped `systemd/tether.service` that decide who the daemon's peers are.
struct UnitSandbox {
    var privateUsers: Bool
    var supplementaryGroups: [String]

    static func shipped() throws -> UnitSandbox {
        let text = try String(contentsOf: SystemdUnitTests.unitsFolder.appendingPathComponent("tether.service"), encoding: .utf8)
        var sandbox = UnitSandbox(privateUsers: false, supplementaryGroups: [])
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2 else { continue }
            switch parts[0] {
            case "PrivateUsers": sandbox.privateUsers = ["yes", "true", "1", "on", "self"].contains(parts[1])
            case "SupplementaryGroups": sandbox.supplementaryGroups += parts[1].split(separator: " ").map(String.init)
            default: break
            }
        }
        return sandbox
    }
}
