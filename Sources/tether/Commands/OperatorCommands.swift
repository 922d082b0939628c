import ArgumentParser
import Foundation
import TetherDaemon

typealias Models = AdminModels

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sources, counts, held plans, outbox and last errors (exit 1 when not ready or a source is degraded).")
    @OptionGroup var options: GlobalOptions
    @Flag(help: "Print the documented JSON.") var json = false

    func run() async throws {
        let reply = try options.call("GET", "/v1/status")
        let status = try options.decode(Models.Status.self, reply)
        if json {
            Output.printJSON(reply.body)
        } else {
            print("ready: \(status.ready ? "yes" : "no — " + status.notReady.joined(separator: ", "))")
            print("policy set: \(status.policySet)")
            if let ha = status.ha {
                let lag = ha.role == "leader" ? "" : ", index \(ha.lagSeconds) s behind" + (ha.listening ? "" : ", not hearing commits")
                let since = ha.leadingSince.map { " since \($0)" } ?? ""
                print("node: \(ha.node), \(ha.role)\(ha.epoch.map { " (epoch \($0))" } ?? "")\(since)\(lag); leader: \(ha.leader ?? "none")")
                print(Output.table(
                    ["NODE", "ROLE", "ADDRESS", "REVISION", "SEEN"],
                    ha.nodes.map { [$0.node, $0.role, $0.address, "\($0.revision)", "\(Int($0.seenSecondsAgo)) s ago"] }, empty: "no node has reported"))
            }
            print("grants: \(status.grants)")
            print("identities: " + ["active", "suspended", "terminated"].map { "\($0) \(status.identities[$0] ?? 0)" }.joined(separator: ", "))
            print("\nsources:")
            print(Output.table(
                ["SOURCE", "STATE", "MODE", "LAST SUCCESS", "UNREADABLE", "LAST ERROR"],
                status.sources.keys.sorted().map { name in
                    let row = status.sources[name]!
                    return [
                        name, row.state, row.mode ?? "-", row.lastSuccess ?? "-", row.unreadableEntries.map(String.init) ?? "-",
                        row.lastError ?? "-",
                    ]
                }))
            if !status.targets.isEmpty {
                print("\ntargets:")
                print(Output.table(
                    ["TARGET", "PENDING", "OLDEST", "LAST ERROR"],
                    status.targets.keys.sorted().map { name in
                        let row = status.targets[name]!
                        return [name, "\(row.pending)", "\(Int(row.oldestSeconds))s", row.lastError ?? "-"]
                    }))
            }
            if let windows = status.safetyWindows, !windows.isEmpty {
                print("\nrevocation windows (safety.window):")
                print(Output.table(
                    ["SOURCE", "REVOKED", "WINDOW", "HELD PLAN", "HELD REVOCATIONS"],
                    windows.keys.sorted().map { name in
                        let row = windows[name]!
                        return [name, "\(row.revocations)", row.window, row.heldPlan ?? "-", row.heldRevocations.map(String.init) ?? "-"]
                    }))
            }
            print("\nheld plans:")
            print(Output.table(["PLAN", "STEPS", "REASON"], status.heldPlans.map { [$0.id, "\($0.steps.count)", $0.reason ?? ""] }))
            if !status.directoryLag.isEmpty {
                print("\ndirectory lag (a lower-precedence source still shows these people enabled):")
                print(Output.table(["USER", "SOURCE", "STATUS", "SET BY"], status.directoryLag.map { [$0.userName, $0.source, $0.status, $0.statusSource] }))
            }
            if !status.agentsAtOneSponsor.isEmpty {
                print("\nagents down to one active sponsor (one departure from quarantine):")
                print(Output.table(
                    ["AGENT", "ACTIVE SPONSOR", "SPONSORS"],
                    status.agentsAtOneSponsor.map { [$0.id, $0.activeSponsor, $0.sponsors.joined(separator: ",")] }))
            }
            for work in status.progress ?? [] { print("\nin progress: \(work.summary)") }
            if let error = status.lastConfigError { print("\nlast configuration error:\n\(error)") }
        }
        let degraded = status.sources.values.contains { $0.state == "degraded" }
        if !status.ready || degraded || status.lastConfigError != nil { throw ExitCode(1) }
    }
}

struct Resync: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Force a resync now (exit 3 when the resulting plan is held).")
    @OptionGroup var options: GlobalOptions
    @Flag(help: "Read every source in full, not incrementally.") var full = false
    @Option(help: "Only this source (ldap).") var source: String?
    @Flag(name: .customLong("dry-run"), help: "Show what would change; change nothing.") var dryRun = false
    @Flag(help: "Show the progress of the read on stderr, then print what the resync changed.") var wait = false
    @Flag(help: "Print the documented JSON.") var json = false

    func run() async throws {
        var query = ["full=\(full)", "dryRun=\(dryRun)"]
        if let source { query.append("source=\(encoded(source))") }
        let path = "/v1/resync?" + query.joined(separator: "&")
        // With --wait, the read and reconciliation show their progress on stderr meanwhile.
        let reply = wait ? try await options.callShowingProgress("POST", path) : try options.call("POST", path)
        let result = try options.decode(Models.ResyncResult.self, reply)
        if json {
            Output.printJSON(reply.body)
        } else if wait || dryRun {
            print("\(result.outcome): plan \(result.plan.id)")
            print(PlanCommand.render(result.plan))
        } else {
            print("\(result.outcome): plan \(result.plan.id) with \(result.plan.steps.count) steps")
        }
        if result.outcome == "held" {
            Output.error("plan \(result.plan.id) is held: \(result.plan.reason ?? ""); review with `tether plans`, then `tether approve \(result.plan.id)`")
            throw ExitCode(3)
        }
    }
}

struct PlanCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "plan", abstract: "What a full reconciliation would change now; changes nothing.")
    @OptionGroup var options: GlobalOptions
    @Flag(help: "Print the documented JSON.") var json = false

    func run() async throws {
        let reply = try options.call("GET", "/v1/plan")
        let plan = try options.decode(Models.PlanRow.self, reply)
        if json { Output.printJSON(reply.body) } else { print("plan \(plan.id)\(plan.held ? " (would be held: \(plan.reason ?? ""))" : "")\n" + Self.render(plan)) }
    }

    static func render(_ plan: Models.PlanRow) -> String {
        Output.table(
            ["ACTION", "SUBJECT", "AGENT", "SCOPE", "RESOURCE", "REASON"],
            plan.steps.map { [$0.action, $0.subject ?? $0.sponsor.map { "sponsor \($0)" } ?? "-", $0.agent, $0.scope ?? "-", $0.resource ?? "-", $0.reason] },
            empty: "no changes")
    }
}

struct Plans: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Plans held by the safety gates.")
    @OptionGroup var options: GlobalOptions
    @Flag(help: "Print the documented JSON.") var json = false

    func run() async throws {
        let reply = try options.call("GET", "/v1/plans")
        let plans = try options.decode([Models.PlanRow].self, reply)
        if json { Output.printJSON(reply.body); return }
        print(Output.table(
            ["PLAN", "SCOPE", "STEPS", "REVOCATIONS", "REASON"],
            plans.map { plan in [plan.id, plan.scope, "\(plan.steps.count)", "\(plan.steps.filter { $0.action == "revoke" }.count)", plan.reason ?? ""] },
            empty: "no held plans"))
    }
}

struct Approve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply a held plan if a fresh computation gives the same plan (exit 1: plan is stale).")
    @OptionGroup var options: GlobalOptions
    @Argument(help: "The plan id (p_…).") var id: String

    func run() async throws {
        let message = try options.decode(Models.Message.self, try options.call("POST", "/v1/plans/\(encoded(id))/approve"))
        print("approved \(id): \(message.plan?.steps.count ?? 0) steps applied")
    }
}

struct Reject: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Discard a held plan.")
    @OptionGroup var options: GlobalOptions
    @Argument(help: "The plan id (p_…).") var id: String

    func run() async throws {
        _ = try options.decode(Models.Message.self, try options.call("POST", "/v1/plans/\(encoded(id))/reject"))
        print("rejected \(id)")
    }
}

struct Grants: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Current grants.")
    @OptionGroup var options: GlobalOptions
    @Option(help: "Only grants of this subject.") var subject: String?
    @Option(help: "Only grants through this agent.") var agent: String?
    @Option(help: "Only grants no check allowed within this time (30d, 12h); a grant never used counts from when it was made.")
    var unused: String?
    @Flag(help: "Print the documented JSON.") var json = false

    func run() async throws {
        var query: [String] = []
        if let subject { query.append("subject=\(encoded(subject))") }
        if let agent { query.append("agent=\(encoded(agent))") }
        if let unused { query.append("unused=\(encoded(unused))") }
        let reply = try options.call("GET", "/v1/grants" + (query.isEmpty ? "" : "?" + query.joined(separator: "&")))
        let grants = try options.decode([Models.GrantRow].self, reply)
        if json { Output.printJSON(reply.body); return }
        if let unused {
            print(Output.table(
                ["SUBJECT", "AGENT", "SCOPE", "RESOURCE", "GRANTED", "LAST USED", "ID"],
                grants.map { [$0.subject, $0.agent, $0.scope, $0.resource, $0.grantedAt, $0.lastUsed ?? "never", $0.id] },
                empty: "no grants unused for \(unused)"))
            return
        }
        print(Output.table(
            ["SUBJECT", "AGENT", "SCOPE", "RESOURCE", "POLICY", "GRANTED", "ID"],
            grants.map { [$0.subject, $0.agent, $0.scope, $0.resource, $0.policy, $0.grantedAt, $0.id] }, empty: "no grants"))
    }
}

struct Identities: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Identities, and reactivation of a leaver.", subcommands: [List.self, Reactivate.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List identities.")
        @OptionGroup var options: GlobalOptions
        @Option(help: "active, suspended or terminated.") var status: String?
        @Flag(help: "Print the documented JSON.") var json = false

        func run() async throws {
            let reply = try options.call("GET", "/v1/identities" + (status.map { "?status=\(encoded($0))" } ?? ""))
            let identities = try options.decode([Models.IdentityRow].self, reply)
            if json { Output.printJSON(reply.body); return }
            print(Output.table(
                ["USER", "STATUS", "EMAIL", "SOURCES", "GROUPS", "ID"],
                identities.map { [$0.userName, $0.status, $0.email ?? "-", $0.sources.joined(separator: ","), "\($0.groups.count)", $0.id] },
                empty: "no identities"))
        }
    }

    struct Reactivate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Reverse a termination or suspension on an operator's word.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The identity's userName.") var user: String

        func run() async throws {
            let message = try options.decode(Models.Message.self, try options.call("POST", "/v1/identities/\(encoded(user))/reactivate"))
            print("\(message.message ?? user); \(message.plan?.steps.count ?? 0) changes")
        }
    }
}

struct Explain: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Whether a request is allowed, and its lineage (exit 0 allowed, 1 denied).",
        discussion: "With --decision ID: that recorded /v1/check decision and, for an allow, the grant it used as explained now.")
    @OptionGroup var options: GlobalOptions
    @Argument var subject: String?
    @Argument var agent: String?
    @Argument var scope: String?
    @Argument var resource: String?
    @Option(help: "A decision id /v1/check answered (d_…), read from the decision log.") var decision: String?
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        let given = [subject, agent, scope, resource].compactMap { $0 }.count
        if decision != nil, given > 0 { throw ValidationError("give either --decision or SUBJECT AGENT SCOPE RESOURCE, not both") }
        if decision == nil, given < 4 { throw ValidationError("expected SUBJECT AGENT SCOPE RESOURCE, or --decision ID") }
    }

    func run() async throws {
        var question = (subject ?? "", agent ?? "", scope ?? "", resource ?? "")
        if let decision {
            let recorded = try await Decisions.show(decision, options: options, json: json)
            guard recorded.allowed else { throw ExitCode(1) }
            question = (recorded.subject, recorded.agent, recorded.scope, recorded.resource)
        }
        let (subject, agent, scope, resource) = question
        let body = try JSONSerialization.data(withJSONObject: ["subject": subject, "agent": agent, "scope": scope, "resource": resource])
        let reply = try options.call("POST", "/v1/explain", body: body)
        let result = try options.decode(Models.ExplainResult.self, reply)
        if json {
            Output.printJSON(reply.body)
        } else {
            print("\(result.allowed ? "ALLOWED" : "DENIED"): \(result.reason)")
            if let grant = result.grant {
                print("grant:      \(grant) (granted \(result.grantedAt ?? "?"), audit seq \(result.auditSeq.map(String.init) ?? "?"))")
                print("policy:     \(result.policy ?? "-") in \(result.policySet ?? "-")")
                print("facts:      \((result.facts ?? []).joined(separator: "; "))")
                print("versions:   \((result.versions ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: "; "))")
                print("events:     \((result.events ?? [:]).sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: "; "))")
            }
            if let identity = result.identity { print("identity:   \(identity.userName) \(identity.status) (\(identity.id))") }
            if let status = result.agentStatus { print("agent:      \(agent) \(status)") }
            if let exception = result.exception {
                print("exception:  \(exception.id) (\(exception.effect)) approved by \(exception.approver) on \(exception.createdAt), "
                    + "\(exception.until.map { "until \($0)" } ?? "until removed"): \(exception.reason)")
            }
            if !result.audit.isEmpty { print("audit:\n" + result.audit.joined(separator: "\n")) }
        }
        if !result.allowed { throw ExitCode(1) }
    }
}

struct Ingest: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Submit JSON-lines lifecycle events (exit 1 if any line is rejected; line numbers printed).")
    @OptionGroup var options: GlobalOptions
    @Argument(help: "A file of events, one per line, or - for standard input.") var file: String

    func run() async throws {
        let data: Data
        if file == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            guard let contents = FileManager.default.contents(atPath: file) else {
                Output.error("cannot read \(file)")
                throw ExitCode(1)
            }
            data = contents
        }
        let results = try options.decode([Models.IngestLine].self, try options.call("POST", "/v1/ingest", body: data))
        for result in results {
            let detail = result.error.map { ": \($0)" } ?? result.revoked.map { " (revoked \($0))" } ?? ""
            print("line \(result.line): \(result.status)\(result.event.map { " \($0)" } ?? "")\(detail)")
        }
        if results.contains(where: { $0.status == "rejected" }) { throw ExitCode(1) }
    }
}
