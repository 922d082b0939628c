import ArgumentParser
import Foundation
import TetherDaemon

/// `tether agents`: the agents in force, and the registry operators write (SPEC §15).
struct Agents: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Agents, sponsors and quarantine; register, change, disable and remove runtime agents.",
        discussion: """
            Agents come from the configuration file (read-only here: edit the file and reload), from SCIM \
            clients and from operators. Every change is one audited commit that also revokes or grants \
            the agent's grants.
            """,
        subcommands: [
            List.self, Add.self, Update.self, Disable.self, Enable.self, Remove.self, Sponsors.self, Sponsor.self,
        ],
        defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List agents.")
        @OptionGroup var options: GlobalOptions
        @Option(help: "Only agents no check allowed within this time (30d, 12h); one never used counts from its oldest grant.")
        var unused: String?
        @Flag(help: "Print the documented JSON.") var json = false

        func run() async throws {
            let reply = try options.call("GET", "/v1/agents" + (unused.map { "?unused=\(encoded($0))" } ?? ""))
            let agents = try options.decode([Models.AgentRow].self, reply)
            if json { Output.printJSON(reply.body); return }
            if let unused {
                print(Output.table(
                    ["AGENT", "KIND", "SPONSOR", "STATUS", "LAST USED"],
                    agents.map { [$0.id, $0.kind, $0.sponsor, $0.status, $0.lastUsed ?? "never"] }, empty: "no agents unused for \(unused)"))
                return
            }
            print(Output.table(
                ["AGENT", "KIND", "SOURCE", "SPONSORS", "ACTIVE SPONSORS", "STATUS", "REASON"],
                agents.map { row in
                    [
                        row.id, row.kind, row.source, row.sponsors.joined(separator: ","),
                        row.activeSponsors.isEmpty ? "-" : row.activeSponsors.joined(separator: ","), row.status,
                        [row.reason, row.proposedSponsor.map { "proposed sponsor: \($0)" }].compactMap { $0 }.joined(separator: "; "),
                    ]
                }, empty: "no agents"))
        }
    }

    /// The fields `add` and `update` take.
    struct Fields: ParsableArguments {
        @Option(name: .customLong("sponsor"), help: "A sponsor's userName; repeat for several (update: replaces them all).")
        var sponsors: [String] = []
        @Option(help: "A name for people.") var displayName: String?
        @Option(help: "What the agent is for.") var description: String?
        @Option(name: .customLong("type"), help: "A free classification, e.g. assistant or workflow.") var agentType: String?
        @Option(help: "quarantine, or transfer-to-manager.") var onSponsorLeave: String?
        @Option(
            name: .customLong("grant"),
            help: "Autonomous agents: a grant as SCOPE=RESOURCE (e.g. ledger:read=erp:ledger/*); repeat for several (update: replaces them all).")
        var grants: [String] = []

        func body(id: String?, kind: String?) throws -> Models.AgentBody {
            var byResource: [(resource: String, scopes: [String])] = []
            for grant in grants {
                guard let equals = grant.firstIndex(of: "="), equals != grant.startIndex, grant.index(after: equals) != grant.endIndex
                else { throw ValidationError("--grant '\(grant)' is not SCOPE=RESOURCE, e.g. ledger:read=erp:ledger/*") }
                let (scope, resource) = (String(grant[..<equals]), String(grant[grant.index(after: equals)...]))
                if let index = byResource.firstIndex(where: { $0.resource == resource }) {
                    byResource[index].scopes.append(scope)
                } else {
                    byResource.append((resource, [scope]))
                }
            }
            return Models.AgentBody(
                id: id, kind: kind, sponsors: sponsors.isEmpty ? nil : sponsors, displayName: displayName,
                description: description, agentType: agentType, onSponsorLeave: onSponsorLeave,
                grants: grants.isEmpty ? nil : byResource.map { Models.GrantSpec(scopes: $0.scopes, resource: $0.resource) })
        }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Register an agent; it receives what policies and its grants give while a sponsor is active.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The agent id (letters, digits, '.', '_', ':' and '-').") var id: String
        @Option(help: "delegated (acts for the person invoking it) or autonomous (acts as itself).") var kind: String
        @OptionGroup var fields: Fields
        @Flag(help: "Print JSON.") var json = false

        func validate() throws {
            if fields.sponsors.isEmpty { throw ValidationError("name at least one sponsor with --sponsor USER") }
        }

        func run() async throws {
            try change("POST", "/v1/agents", body: try JSONEncoder().encode(try fields.body(id: id, kind: kind)), options: options, json: json)
        }
    }

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change a registered agent: only the options given change.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The agent id.") var id: String
        @Option(help: "delegated or autonomous.") var kind: String?
        @OptionGroup var fields: Fields
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let body = try fields.body(id: nil, kind: kind)
            try change("PATCH", "/v1/agents/\(encoded(id))", body: try JSONEncoder().encode(body), options: options, json: json)
        }
    }

    /// The registered agent a state change is for, and how to print what it did.
    struct Registered: ParsableArguments {
        @Argument(help: "The agent id.") var id: String
        @Flag(help: "Print JSON.") var json = false
    }

    struct Disable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Disable a registered agent: its grants are revoked and every check for it is denied.")
        @OptionGroup var options: GlobalOptions
        @OptionGroup var agent: Registered

        func run() async throws {
            try change("POST", "/v1/agents/\(encoded(agent.id))/disable", options: options, json: agent.json)
        }
    }

    struct Enable: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Enable a disabled registered agent again.")
        @OptionGroup var options: GlobalOptions
        @OptionGroup var agent: Registered

        func run() async throws {
            try change("POST", "/v1/agents/\(encoded(agent.id))/enable", options: options, json: agent.json)
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a registered agent and revoke every grant it holds.")
        @OptionGroup var options: GlobalOptions
        @OptionGroup var agent: Registered

        func run() async throws {
            try change("DELETE", "/v1/agents/\(encoded(agent.id))", options: options, json: agent.json)
        }
    }

    struct Sponsors: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show, add or remove a registered agent's sponsors (at least agents.minSponsors stay active).")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The agent id.") var id: String
        @Option(help: "A sponsor to add; repeat for several.") var add: [String] = []
        @Option(help: "A sponsor to remove; repeat for several.") var remove: [String] = []
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            guard !add.isEmpty || !remove.isEmpty else {
                let reply = try options.call("GET", "/v1/agents")
                let rows = try options.decode([Models.AgentRow].self, reply)
                guard let row = rows.first(where: { $0.id == id }) else {
                    Output.error("no agent \(id) is configured or registered")
                    throw ExitCode(1)
                }
                if json {
                    Output.printJSON(try JSONEncoder().encode(row))
                    return
                }
                print(Output.table(
                    ["SPONSOR", "ACTIVE"], row.sponsors.map { [$0, row.activeSponsors.contains($0) ? "yes" : "no"] }))
                return
            }
            let body = try JSONEncoder().encode(Models.SponsorsBody(add: add, remove: remove))
            try change("POST", "/v1/agents/\(encoded(id))/sponsors", body: body, options: options, json: json)
        }
    }

    struct Sponsor: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Name the sponsor in force for any agent (an override), lifting a quarantine that awaits an operator.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The agent id.") var agent: String
        @Argument(help: "The new sponsor's userName (an active identity).") var user: String

        func run() async throws {
            let message = try options.decode(Models.Message.self, try options.call("POST", "/v1/agents/\(encoded(agent))/sponsor/\(encoded(user))"))
            print("\(message.message ?? ""); \(message.plan?.steps.count ?? 0) changes")
        }
    }

    /// Sends a registry change and prints what it did.
    static func change(_ method: String, _ path: String, body: Data = Data(), options: GlobalOptions, json: Bool) throws {
        let reply = try options.call(method, path, body: body)
        let result = try options.decode(Models.AgentResult.self, reply)
        if json { Output.printJSON(reply.body); return }
        let granted = result.plan.steps.count { $0.action == "grant" }
        let revoked = result.plan.steps.count { $0.action == "revoke" }
        guard let revision = result.revision else {
            print("\(result.agent.id): no change")
            return
        }
        print("\(result.agent.id): \(result.action) (\(result.agent.status), sponsors \(result.agent.sponsors.joined(separator: ","))); "
            + "\(granted) granted, \(revoked) revoked; audit seq \(revision)")
    }
}
