import ArgumentParser
import Foundation
import TetherConfig
import TetherCore
import TetherDaemon
import TetherStore

/// Audit commands read the store file directly, so they work whether or not the daemon runs.
/// They open it read-only: a missing store is an error naming the path, never a new empty one.
struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Audit records, and verification of the hash chain.", subcommands: Self.subcommands, defaultSubcommand: List.self)

    /// Every audit subcommand; each reads the store through ``openStore(_:store:)`` only.
    static let subcommands: [any ParsableCommand.Type] = [List.self, Verify.self, Checkpoints.self, Key.self]

    /// The store named by the configuration (or the SQLite file `store`), opened for reading:
    /// nothing is created or migrated. Exit 1 naming the path or database when it is missing,
    /// unreadable or not a Tether store; exit 2 when the configuration of a PostgreSQL store
    /// cannot be used.
    static func openStore(_ options: GlobalOptions, store: String?) async throws -> any AuditReading & AuditCheckpointStore {
        if store == nil, ConfigurationLoader.namesPostgresStore(path: options.configPath) {
            return try await openPostgres(options)
        }
        do {
            return try SQLiteStateStore(readingAt: store ?? ConfigurationLoader.locations(path: options.configPath).store)
        } catch {
            Output.error("\(error)")
            throw ExitCode(1)
        }
    }

    /// The PostgreSQL store the configuration names, opened as it is: nothing is created or
    /// migrated. Exit 2 when its settings cannot be used, 1 when it cannot be opened.
    static func openPostgres(_ options: GlobalOptions) async throws -> PostgresStateStore {
        let settings: PostgresSettings
        do {
            let loaded = try ConfigurationLoader.load(path: options.configPath)
            guard let postgres = loaded.configuration.store.postgres else { throw ExitCode(2) }
            settings = try StoreOpener.settings(postgres)
        } catch {
            Output.error("\(error)")
            throw ExitCode(2)
        }
        do {
            return try await PostgresStateStore(settings: settings, migrating: false)
        } catch {
            Output.error("\(error)")
            throw ExitCode(1)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "Print audit records; --json prints the JSON Lines export.")
        @OptionGroup var options: GlobalOptions
        @Option(name: .customLong("store"), help: "SQLite store file to read (default: the store the configuration names).") var storePath: String?
        @Option(help: "Only records about this subject.") var subject: String?
        @Option(help: "Only records about this agent.") var agent: String?
        @Option(help: "Only records at or after this time (RFC 3339, or a duration such as 1h or 7d ago).") var since: String?
        @Flag(help: "Print the JSON Lines export (SPEC §9).") var json = false

        func run() async throws {
            let store = try await Audit.openStore(options, store: storePath)
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
        static let configuration = CommandConfiguration(
            abstract: "Recompute the hash chain (exit 0 intact, 1 broken at seq N).",
            discussion: """
                With --checkpoints, also check the chain against signed checkpoints kept elsewhere: each must be \
                signed by the trusted key (audit.signingKeyFile's public half, or --key), and the chain must hold \
                each checkpointed seq with the signed hash. Exit 1 names the first seq where records were cut off, \
                the chain was rewritten, or a checkpoint is refused; exit 2 for a file or key that cannot be used.
                """)
        @OptionGroup var options: GlobalOptions
        @Option(name: .customLong("store"), help: "SQLite store file to read (default: the store the configuration names).") var storePath: String?
        @Option(help: "Checkpoints to check the chain against: a file of JSON lines, or - for standard input.") var checkpoints: String?
        @Option(help: "The public key (PEM) checkpoints must be signed by (default: audit.signingKeyFile's public half).") var key: String?

        func run() async throws {
            let store = try await Audit.openStore(options, store: storePath)
            guard let checkpoints else {
                if key != nil {
                    Output.error("--key names the key checkpoints are verified with; pass --checkpoints FILE too")
                    throw ExitCode(2)
                }
                return try report(await store.verifyAuditChain(), checkpoints: nil)
            }
            let trusted = try Audit.trustedKey(options, file: key)
            let read = try Audit.readCheckpoints(checkpoints)
            try report(await store.verifyAuditChain(against: read, trusting: trusted), checkpoints: (read.count, trusted))
        }

        private func report(_ verification: ChainVerification, checkpoints: (count: Int, key: AuditPublicKey)?) throws {
            switch verification {
            case .intact(let count):
                if let checkpoints {
                    print("audit chain intact: \(count) records, consistent with \(checkpoints.count) checkpoints signed by \(checkpoints.key.id)")
                    return
                }
                print("audit chain intact: \(count) records")
            case .broken(let seq, let reason):
                print("audit chain broken at seq \(seq): \(reason)")
                throw ExitCode(1)
            }
        }
    }
}
