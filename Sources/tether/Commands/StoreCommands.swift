import ArgumentParser
import Foundation
import Synchronization
import TetherConfig
import TetherCore
import TetherDaemon
import TetherStore

/// `tether store`: the store itself, with the daemon stopped.
struct Store: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Move a stopped deployment's store between SQLite and PostgreSQL.", subcommands: [Copy.self])

    struct Copy: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy the whole store into a new, empty one, and verify the audit chain on the copy.",
            discussion: """
                Each end is sqlite:PATH or a postgres://USER@HOST:PORT/DATABASE URL (SPEC §14); one of each. \
                Stop the daemon first: a daemon answering on the configuration's admin socket is refused. \
                The copy is one transaction: a copy that fails leaves no new store behind.
                """)
        @OptionGroup var options: GlobalOptions
        @Option(help: "The store to copy: sqlite:PATH or postgres://USER@HOST:PORT/DATABASE.") var from: String
        @Option(help: "The new store: sqlite:PATH (a file that does not exist) or an empty PostgreSQL database.") var to: String
        @Option(help: "A file holding the password of the --from database.") var fromPasswordFile: String?
        @Option(help: "A file holding the password of the --to database.") var toPasswordFile: String?
        @Option(help: "TLS to PostgreSQL: disable, require or verify-full.") var tls: String = "disable"
        @Option(help: "CA certificates (PEM) for --tls verify-full.") var caFile: String?

        func run() async throws {
            let source = try endpoint(from, passwordFile: fromPasswordFile, option: "--from")
            let target = try endpoint(to, passwordFile: toPasswordFile, option: "--to")
            if (try? options.client().request("GET", "/v1/status"))?.status == 200 {
                Output.error("a daemon answers on \(ConfigurationLoader.locations(path: options.configPath).socket); stop it before copying its store")
                throw ExitCode(1)
            }
            let started = Date()
            let display = Mutex(ProgressDisplay())
            let summary: StoreCopy.Summary
            do {
                summary = try await StoreCopy.copy(from: source, to: target) { progress in
                    let now = Date()
                    // One phase per table, the rate and the time left over the whole copy.
                    let snapshot = WorkProgress.Snapshot(
                        work: "store copy", phase: progress.table, done: progress.copied, total: progress.total,
                        startedAt: started, phaseStartedAt: started)
                    display.withLock { $0.show([AdminModels.ProgressRow(snapshot, at: now)], now: now) }
                }
            } catch {
                display.withLock { $0.finish() }
                Output.error("\(error)")
                throw ExitCode(1)
            }
            display.withLock { $0.finish() }
            let rows = summary.rows.values.reduce(0, +)
            let seconds = Date().timeIntervalSince(started)
            print("copied \(rows) rows of \(summary.rows.count) tables from \(source) to \(target) in \(String(format: "%.1f", seconds)) s")
            if let head = summary.auditHead {
                print("the audit chain verifies on the copy: \(summary.auditRecords) records, head \(head)")
            } else {
                print("the audit log is empty on both ends")
            }
        }

        private func endpoint(_ text: String, passwordFile: String?, option: String) throws -> StoreCopy.Endpoint {
            if text.hasPrefix("sqlite:") {
                let path = String(text.dropFirst("sqlite:".count))
                guard !path.isEmpty else { throw ValidationError("\(option) sqlite: names no file; expected sqlite:PATH") }
                if passwordFile != nil { throw ValidationError("\(option) is a SQLite file; it takes no password file") }
                return .sqlite(path: URL(fileURLWithPath: path).standardizedFileURL.path)
            }
            guard let mode = PostgresSettings.TLSMode(rawValue: tls) else {
                throw ValidationError("--tls \(tls): expected disable, require or verify-full")
            }
            let url = text.hasPrefix("postgres:") && !text.hasPrefix("postgres://") ? String(text.dropFirst("postgres:".count)) : text
            do {
                let password = try passwordFile.map { String(decoding: try SecretFile.read($0), as: UTF8.self) }
                return .postgres(try PostgresSettings(url: url, password: password, tls: mode, caFile: caFile, poolSize: 2))
            } catch {
                throw ValidationError("\(option): \(error)")
            }
        }
    }
}
