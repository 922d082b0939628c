import ArgumentParser
import Foundation
import TetherDaemon

/// `tether exceptions`: operators' exceptions to policy (SPEC §17).
struct Exceptions: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Exceptions to policy: a grant no policy gives, for a while, or a deny that beats policy.",
        subcommands: [List.self, GrantException.self, DenyException.self, Remove.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List the exceptions in force.")
        @OptionGroup var options: GlobalOptions
        @Flag(help: "Print the documented JSON.") var json = false

        func run() async throws {
            let reply = try options.call("GET", "/v1/exceptions")
            let rows = try options.decode([Models.ExceptionRow].self, reply)
            if json { Output.printJSON(reply.body); return }
            print(Output.table(
                ["ID", "EFFECT", "SUBJECT", "AGENT", "SCOPE", "RESOURCE", "UNTIL", "APPROVER", "REASON"],
                rows.map { [$0.id, $0.effect, $0.subject, $0.agent, $0.scope, $0.resource, $0.until ?? "-", $0.approver, $0.reason] },
                empty: "no exceptions"))
        }
    }

    /// What `grant` and `deny` both take.
    struct Target: ParsableArguments {
        @Argument(help: "The person's userName.") var subject: String
        @Argument(help: "The agent id.") var agent: String
        @Argument(help: "The scope.") var scope: String
        @Argument(help: "The resource, or a prefix ending in *.") var resource: String
        @Option(help: "Why, in the approver's words (recorded in the audit log).") var reason: String
    }

    struct GrantException: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "grant",
            abstract: "Give a person a grant no policy gives, until a time (at most exceptions.maxDuration away).")
        @OptionGroup var options: GlobalOptions
        @OptionGroup var target: Target
        @Option(help: "When it ends: an RFC 3339 time (2026-12-31T00:00:00Z) or a duration from now (12h, 7d).")
        var until: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try submit("grant", target, until: until, options: options, json: json)
        }
    }

    struct DenyException: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "deny", abstract: "Keep a grant from a person even where policy gives it; a deny beats every grant.")
        @OptionGroup var options: GlobalOptions
        @OptionGroup var target: Target
        @Option(help: "When it ends (RFC 3339 time or a duration from now); without it the deny stands until removed.")
        var until: String?
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            try submit("deny", target, until: until, options: options, json: json)
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "End an exception now.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The exception id (x_…).") var id: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let reply = try options.call("DELETE", "/v1/exceptions/\(encoded(id))")
            let result = try options.decode(Models.ExceptionResult.self, reply)
            if json { Output.printJSON(reply.body); return }
            print("\(result.exception.id) removed; \(Exceptions.changes(result.plan))")
        }
    }

    static func submit(_ effect: String, _ target: Target, until: String?, options: GlobalOptions, json: Bool) throws {
        let body = Models.ExceptionBody(
            effect: effect, subject: target.subject, agent: target.agent, scope: target.scope, resource: target.resource,
            reason: target.reason, until: until)
        let reply = try options.call("POST", "/v1/exceptions", body: try JSONEncoder().encode(body))
        let result = try options.decode(Models.ExceptionResult.self, reply)
        if json { Output.printJSON(reply.body); return }
        let end = result.exception.until.map { "until \($0)" } ?? "until removed"
        print("\(result.exception.id): \(effect) \(target.subject) \(target.agent) \(target.scope) \(target.resource) \(end); \(changes(result.plan))")
    }

    static func changes(_ plan: Models.PlanRow) -> String {
        let granted = plan.steps.count { $0.action == "grant" }
        let revoked = plan.steps.count { $0.action == "revoke" }
        return "\(granted) granted, \(revoked) revoked"
    }
}
