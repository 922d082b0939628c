import ArgumentParser
import Foundation
import TetherConfig
import TetherCore
import TetherStore

/// Audit commands read the store file directly, so they work whether or not the daemon runs.
/// They open it read-only: a missing store is an error naming the path, never a new empty one.
struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Audit records, and verification of the hash chain.", subcommands: Self.subcommands, defaultSubcommand: List.self)

    /// Every audit subcommand; each reads the store through ``openStore(_:store:)`` only.
    static let subcommands: [any ParsableCommand.Type] = [List.self, Verify.self]

    /// The store named by the configuration, opened read-only; exit 1 naming the path when it
    /// is missing, unreadable or not a Tether store.
    static func openStore(_ options: GlobalOptions, store: String?) throws -> SQLiteStateStore {
        do {
            return try SQLiteStateStore(readingAt: store ?? ConfigurationLoader.locations(path: options.configPath).store)
        } catch {
            Output.error("\(error)")
            throw ExitCode(1)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "Print audit records; --json prints the JSON Lines export.")
        @OptionGroup var options: GlobalOptions
        @Option(name: .customLong("store"), help: "Store file to read (default: store.sqlite from the configuration).") var storePath: String?
        @Option(help: "Only records about this subject.") var subject: String?
        @Option(help: "Only records about this agent.") var agent: String?
        @Option(help: "Only records at or after this time (RFC 3339, or a duration such as 1h or 7d ago).") var since: String?
        @Flag(help: "Print the JSON Lines export (SPEC §9).") var json = false

        func run() async throws {
            let store = try Audit.openStore(options, store: storePath)
            var sinceDate: Date?
            if let since {
                guard let parsed = Timestamp.parse(since) ?? Self.ago(since) else {
                    Output.error("--since \(since): expected an RFC 3339 time (2026-11-28T10:00:00Z) or a duration (15m, 1h, 7d)")
                    throw ExitCode(2)
                }
                sinceDate = parsed
            }
            let records = try await store.auditRecords(AuditQuery(subject: subject, agent: agent, since: sinceDate))
            if json {
                for record in records { print(record.line) }
                return
            }
            print(Output.table(
                ["SEQ", "TIME", "ACTION", "ACTOR", "SUBJECT", "AGENT", "DETAIL"],
                records.map { record in
                    let detail = [record["scope"], record["resource"], record["reason"]].compactMap { $0 }.joined(separator: " ")
                    return ["\(record.seq)", record["time"] ?? "", record.action, record["actor"] ?? "", record["subject"] ?? "-", record["agent"] ?? "-", detail]
                }, empty: "no audit records"))
        }

        static func ago(_ text: String) -> Date? {
            let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3_600), ("d", 86_400)]
            for (suffix, seconds) in units where text.hasSuffix(suffix) {
                if let value = Double(text.dropLast(suffix.count)) { return Date().addingTimeInterval(-value * seconds) }
            }
            return nil
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Recompute the hash chain (exit 0 intact, 1 broken at seq N).")
        @OptionGroup var options: GlobalOptions
        @Option(name: .customLong("store"), help: "Store file to read (default: store.sqlite from the configuration).") var storePath: String?

        func run() async throws {
            let store = try Audit.openStore(options, store: storePath)
            switch try await store.verifyAuditChain() {
            case .intact(let count):
                print("audit chain intact: \(count) records")
            case .broken(let seq, let reason):
                print("audit chain broken at seq \(seq): \(reason)")
                throw ExitCode(1)
            }
        }
    }
}
