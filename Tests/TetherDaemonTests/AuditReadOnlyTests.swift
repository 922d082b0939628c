import Foundation
import Testing
import TetherStore
#if canImport(Glibc)
import Glibc
#endif

/// `tether audit` reads the store file directly and read-only: a store that is missing,
/// unreadable or not a Tether store is exit 1 naming the path, and nothing is created,
/// migrated or written — every audit subcommand alike.
@Suite struct AuditReadOnlyTests {
    /// Every audit subcommand, as an operator types it.
    static let subcommands: [[String]] = [
        ["audit"], ["audit", "list"], ["audit", "list", "--json"], ["audit", "verify"], ["audit", "checkpoints"],
        ["audit", "checkpoints", "--json"],
    ]

    static func folder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tether-audit-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    @Test(arguments: subcommands)
    func aMissingStoreIsExitOneNamingItAndNothingIsCreated(_ command: [String]) async throws {
        let folder = try Self.folder()
        let path = folder.appendingPathComponent("state/tether.db").path
        let named = try await DaemonProcess.run(command + ["--store", path])
        #expect(named.code == 1, "\(named.stdout)")
        #expect(named.stderr.contains(path), "\(named.stderr)")
        #expect(!named.stdout.contains("intact"))

        // The same through the configuration's store.sqlite.
        let config = folder.appendingPathComponent("tether.yaml").path
        try "store: { sqlite: ./state/tether.db }\n".write(toFile: config, atomically: true, encoding: .utf8)
        let configured = try await DaemonProcess.run(command + ["--config", config])
        #expect(configured.code == 1)
        #expect(configured.stderr.contains(path), "\(configured.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("state").path), "nothing was created")
    }

    @Test(arguments: subcommands)
    func anEmptyFileIsNotMigratedIntoAStore(_ command: [String]) async throws {
        let path = try Self.folder().appendingPathComponent("tether.db").path
        FileManager.default.createFile(atPath: path, contents: Data())
        let result = try await DaemonProcess.run(command + ["--store", path])
        #expect(result.code == 1, "\(result.stdout)")
        #expect(result.stderr.contains(path), "\(result.stderr)")
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int == 0, "the file was left as it was")
    }

    @Test(arguments: subcommands)
    func aFileThatIsNoStoreIsExitOneNamingIt(_ command: [String]) async throws {
        let folder = try Self.folder()
        let garbage = folder.appendingPathComponent("garbage.db").path
        let bytes = Data((0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        FileManager.default.createFile(atPath: garbage, contents: bytes)
        let notADatabase = try await DaemonProcess.run(command + ["--store", garbage])
        #expect(notADatabase.code == 1)
        #expect(notADatabase.stderr.contains(garbage), "\(notADatabase.stderr)")
        #expect(FileManager.default.contents(atPath: garbage) == bytes)

        let directory = folder.appendingPathComponent("a-directory.db").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        let notAFile = try await DaemonProcess.run(command + ["--store", directory])
        #expect(notAFile.code == 1)
        #expect(notAFile.stderr.contains(directory), "\(notAFile.stderr)")
    }

    /// Root reads every file, so the reader here is the unprivileged `nobody` (tests run as root).
    @Test(.enabled(if: getuid() == 0, "needs root to run the CLI as another user"), arguments: subcommands)
    func anUnreadableStoreIsExitOneNamingIt(_ command: [String]) async throws {
        let folder = try Self.folder()
        let path = folder.appendingPathComponent("tether.db").path
        _ = try SQLiteStateStore(path: path)
        #expect(chmod(path, 0o600) == 0)
        #expect(chmod(folder.path, 0o755) == 0)
        let result = try await DaemonProcess.run(
            ["--reuid=65534", "--regid=65534", "--clear-groups", DaemonProcess.binary.path] + command + ["--store", path],
            executable: "/usr/bin/setpriv")
        #expect(result.code == 1, "\(result.stdout)")
        #expect(result.stderr.contains(path), "\(result.stderr)")
        #expect(result.stderr.contains("permission denied"), "\(result.stderr)")
    }

    @Test(arguments: subcommands)
    func aStoreIsReadAndLeftAsItWas(_ command: [String]) async throws {
        let path = try Self.folder().appendingPathComponent("tether.db").path
        _ = try SQLiteStateStore(path: path)
        let before = FileManager.default.contents(atPath: path)
        let result = try await DaemonProcess.run(command + ["--store", path])
        #expect(result.code == 0, "\(result.stderr)")
        #expect(FileManager.default.contents(atPath: path) == before)
        if command.last == "verify" { #expect(result.stdout.contains("audit chain intact: 0 records")) }
    }
}
