import ArgumentParser
import Foundation
import TetherConfig
import TetherCore
import TetherStore

/// Signed checkpoints of the audit chain (docs/audit.md): listed from the store, the public
/// key printed, and `audit verify --checkpoints` checking the chain against copies kept elsewhere.
extension Audit {
    struct Checkpoints: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the signed checkpoints of the audit chain; --json prints them as JSON Lines.")
        @OptionGroup var options: GlobalOptions
        @Option(name: .customLong("store"), help: "SQLite store file to read (default: the store the configuration names).") var storePath: String?
        @Flag(help: "One checkpoint per line: {\"hash\",\"key\",\"seq\",\"signature\",\"time\"}, keys sorted.") var json = false

        func run() async throws {
            let store = try await Audit.openStore(options, store: storePath)
            let checkpoints = try await store.auditCheckpoints(after: nil, limit: nil)
            if json {
                for checkpoint in checkpoints { print(checkpoint.line) }
                return
            }
            print(Output.table(
                ["SEQ", "TIME", "HASH", "KEY"], checkpoints.map { ["\($0.seq)", $0.time, $0.hash, $0.key] },
                empty: "no audit checkpoints (audit.signingKeyFile makes them)"))
        }
    }

    struct Key: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the public key that verifies audit checkpoints (PEM), from audit.signingKeyFile.")
        @OptionGroup var options: GlobalOptions

        func run() async throws {
            let key = try Audit.configuredKey(options)
            print(key.pem, terminator: "")
        }
    }

    /// The public half of the configuration's `audit.signingKeyFile`; exit 2 saying what is
    /// wrong (no such setting, a file that cannot be used, a configuration that does not load).
    static func configuredKey(_ options: GlobalOptions) throws -> AuditPublicKey {
        let hint = "an auditor passes the public key with --key FILE (`tether audit key` prints it)"
        do {
            let loaded = try ConfigurationLoader.load(path: options.configPath)
            guard let key = try loaded.configuration.audit.signingKey(file: loaded.file) else {
                Output.error("\(options.configPath) sets no audit.signingKeyFile, so there is no checkpoint key; \(hint)")
                throw ExitCode(2)
            }
            return key.publicKey
        } catch let error as ConfigurationError {
            Output.error("\(error.description)\n\(hint)")
            throw ExitCode(2)
        }
    }

    /// The checkpoints in `source` (a file, or `-` for standard input), one JSON line each;
    /// exit 2 naming the file and line of the first that is not one.
    static func readCheckpoints(_ source: String) throws -> [AuditCheckpoint] {
        let data: Data?
        if source == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            var isDirectory: ObjCBool = false
            data = FileManager.default.fileExists(atPath: source, isDirectory: &isDirectory) && !isDirectory.boolValue
                ? FileManager.default.contents(atPath: source) : nil
        }
        let name = source == "-" ? "standard input" : source
        guard let data else {
            Output.error("--checkpoints \(source): cannot be read (missing, or not readable by this user)")
            throw ExitCode(2)
        }
        var checkpoints: [AuditCheckpoint] = []
        for (offset, line) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false)
            .enumerated()
        {
            let text = line.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !text.isEmpty else { continue }
            do throws(AuditCheckpoint.Unreadable) {
                checkpoints.append(try AuditCheckpoint(line: text))
            } catch {
                Output.error("\(name):\(offset + 1): not a checkpoint (`tether audit checkpoints --json` writes them): \(error)")
                throw ExitCode(2)
            }
        }
        guard !checkpoints.isEmpty else {
            Output.error("\(name) holds no checkpoints, so nothing can be checked against them")
            throw ExitCode(2)
        }
        return checkpoints
    }

    /// The key `--key` names, else the configured one.
    static func trustedKey(_ options: GlobalOptions, file: String?) throws -> AuditPublicKey {
        guard let file else { return try configuredKey(options) }
        do throws(AuditKeyProblem) {
            return try AuditPublicKey.read(file)
        } catch {
            Output.error("--key \(error.description)")
            throw ExitCode(2)
        }
    }
}
