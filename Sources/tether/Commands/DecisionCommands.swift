import ArgumentParser
import Foundation
import TetherConfig
import TetherCore
import TetherStore

/// `tether decisions`: the decision log (SPEC §16), read from its file (or the PostgreSQL
/// store's table) directly, like `tether audit` reads the store: it works whether or not the
/// daemon runs, and never makes the daemon's writer wait (SQLite's WAL lets a reader and the
/// writer go on together).
struct Decisions: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Recorded /v1/check decisions, oldest first; --json prints JSON Lines.")
    @OptionGroup var options: GlobalOptions
    @Option(name: .customLong("log"), help: "Decision log file to read (default: check.log.path, else beside the store; with store.postgres, the database's decisions table).")
    var logPath: String?
    @Option(help: "Only decisions about this subject.") var subject: String?
    @Option(help: "Only decisions about this agent.") var agent: String?
    @Option(help: "Only decisions at or after this time (RFC 3339, or a duration such as 1h or 7d ago).") var since: String?
    @Option(help: "Only decisions before this time (RFC 3339, or a duration such as 1h ago).") var until: String?
    @Flag(help: "Only denies.") var denied = false
    @Option(help: "At most this many decisions.") var limit: Int?
    @Flag(help: "Print JSON Lines, keys sorted.") var json = false

    func run() async throws {
        if let limit, limit < 1 {
            Output.error("--limit \(limit): expected a whole number from 1")
            throw ExitCode(2)
        }
        let log = try await Self.open(options, path: logPath)
        let query = DecisionQuery(
            subject: subject, agent: agent, since: try since.map { try Self.time($0, option: "--since") },
            until: try until.map { try Self.time($0, option: "--until") }, deniedOnly: denied, limit: limit)
        let decisions = try await log.decisions(query)
        if json {
            var out = ""
            for decision in decisions {
                out += decision.line
                out += "\n"
            }
            FileHandle.standardOutput.write(Data(out.utf8))
            return
        }
        print(Output.table(
            ["TIME", "DECISION", "ANSWER", "SUBJECT", "AGENT", "SCOPE", "RESOURCE", "GRANT", "CALLER"],
            decisions.map { decision in
                [
                    Timestamp.string(decision.time), decision.id, decision.allowed ? "allow" : "deny", decision.subject, decision.agent,
                    decision.scope, decision.resource, decision.grant ?? "-", decision.caller,
                ]
            }, empty: "no decisions"))
    }

    /// The decision log named by `path` or the configuration, opened read-only: the file, or
    /// the decisions table of a PostgreSQL store; exit 1 naming the path or database when it is
    /// missing or not a decision log.
    static func open(_ options: GlobalOptions, path: String?) async throws -> any DecisionLog {
        if path == nil, ConfigurationLoader.namesPostgresStore(path: options.configPath) {
            return PostgresDecisionLog(store: try await Audit.openPostgres(options))
        }
        do {
            return try DecisionLogStore(readingAt: path ?? ConfigurationLoader.decisionLogPath(path: options.configPath))
        } catch {
            Output.error("\(error)")
            throw ExitCode(1)
        }
    }

    /// An RFC 3339 time or a duration ago; exit 2 naming `option` otherwise.
    static func time(_ text: String, option: String) throws -> Date {
        guard let date = Timestamp.parse(text) ?? Audit.List.ago(text) else {
            Output.error("\(option) \(text): expected an RFC 3339 time (2026-11-28T10:00:00Z) or a duration (15m, 1h, 7d)")
            throw ExitCode(2)
        }
        return date
    }

    /// Prints the recorded decision `id` for `tether explain --decision` and returns it; exit 1
    /// when the log does not hold it.
    static func show(_ id: String, options: GlobalOptions, json: Bool) async throws -> DecisionRecord {
        guard DecisionID.parse(id) != nil else {
            Output.error("--decision \(id): not a decision id (d_ and 32 hex digits, as /v1/check answers)")
            throw ExitCode(2)
        }
        let log = try await open(options, path: nil)
        guard let decision = try await log.decision(id: id) else {
            Output.error("decision \(id) is not in the decision log (\(log.location)): not recorded (an allow not sampled, or dropped) or past check.log.retention")
            throw ExitCode(1)
        }
        if json {
            print(decision.line)
        } else {
            print("decision:   \(decision.id) at \(Timestamp.string(decision.time)) for \(decision.caller)")
            print("question:   \(decision.subject) \(decision.agent) \(decision.scope) \(decision.resource)")
            print("answer:     \(decision.allowed ? "allowed by grant \(decision.grant ?? "-") of policy \(decision.policy ?? "-")" : "denied")")
            print("from:       policy set \(decision.policySet), index revision \(decision.revision) (audit seq)")
            if decision.allowed { print("the grant now:") }
        }
        return decision
    }
}
