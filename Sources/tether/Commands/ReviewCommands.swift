import ArgumentParser
import Foundation
import TetherDaemon

/// `tether reviews`: access reviews (SPEC §18).
struct Reviews: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Access reviews: sponsors or managers recertify what agents hold for people.",
        subcommands: [List.self, Start.self, Show.self, Close.self, Links.self, Report.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List the review campaigns, newest first.")
        @OptionGroup var options: GlobalOptions
        @Flag(help: "Print the documented JSON.") var json = false

        func run() async throws {
            let reply = try options.call("GET", "/v1/reviews")
            let rows = try options.decode([Models.CampaignRow].self, reply)
            if json { Output.printJSON(reply.body); return }
            print(Output.table(
                ["ID", "NAME", "SCOPE", "REVIEWER", "DUE", "STATUS", "ITEMS", "DECIDED"],
                rows.map {
                    [$0.id, $0.name, $0.scope, $0.reviewer, $0.due, $0.status, String($0.items ?? 0), String($0.decided ?? 0)]
                },
                empty: "no reviews"))
        }
    }

    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start a campaign: one item per person and agent in scope, sent to their reviewers.")
        @OptionGroup var options: GlobalOptions
        @Option(help: "What reviewers see it called.") var name: String
        @Option(help: "all, agent:ID or policy:ID.") var scope: String = "all"
        @Option(help: "sponsor (the agent's sponsors) or manager (the person's manager).") var reviewer: String = "sponsor"
        @Option(help: "When it closes: an RFC 3339 time or a duration from now (14d).") var due: String = "14d"
        @Option(help: "What an item nobody answers gets at the due date: keep or revoke.") var ifNoAnswer: String = "keep"
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let body = Models.ReviewBody(name: name, scope: scope, reviewer: reviewer, due: due, ifNoAnswer: ifNoAnswer)
            let reply = try options.call("POST", "/v1/reviews", body: try JSONEncoder().encode(body))
            let result = try options.decode(Models.ReviewResult.self, reply)
            if json { Output.printJSON(reply.body); return }
            let campaign = result.campaign
            print("\(campaign.id): \(campaign.name) started, \(campaign.items ?? 0) items, due \(campaign.due)")
            if let unassigned = campaign.unassigned, unassigned > 0 {
                print("\(unassigned) items have no reviewer (no active sponsor or manager): they get --if-no-answer \(campaign.ifNoAnswer)")
            }
            Reviews.printNotify(result.notify)
            print("`tether reviews links \(campaign.id)` prints the reviewers' links.")
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a campaign and its items.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The campaign id (r_…).") var id: String
        @Flag(help: "Print the documented JSON.") var json = false

        func run() async throws {
            let reply = try options.call("GET", "/v1/reviews/\(encoded(id))")
            let detail = try options.decode(Models.CampaignDetail.self, reply)
            if json { Output.printJSON(reply.body); return }
            let campaign = detail.campaign
            print("\(campaign.id): \(campaign.name) (\(campaign.status)), scope \(campaign.scope), reviewed by \(campaign.reviewer)s")
            print("due \(campaign.due); no answer means \(campaign.ifNoAnswer); started \(campaign.createdAt) by \(campaign.createdBy)")
            if let plan = campaign.heldPlan { print("its revocations wait in held plan \(plan): `tether approve \(plan)`") }
            print(Output.table(
                ["#", "SUBJECT", "AGENT", "GRANTS", "REVIEWERS", "RECOMMENDED", "DECISION", "OUTCOME"],
                detail.items.map {
                    [
                        String($0.number), $0.subject, $0.agent, String($0.grants.count),
                        $0.reviewers.isEmpty ? "(none)" : $0.reviewers.joined(separator: ","), $0.recommendation,
                        Reviews.decision($0), $0.outcome ?? "open",
                    ]
                }))
        }
    }

    struct Close: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Close a campaign now: decisions and defaults applied as one plan, under the safety gates.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The campaign id (r_…).") var id: String
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let reply = try options.call("POST", "/v1/reviews/\(encoded(id))/close")
            let result = try options.decode(Models.ReviewResult.self, reply)
            if json { Output.printJSON(reply.body); return }
            let revoked = result.plan?.steps.count { $0.action == "revoke" } ?? 0
            if result.status == "held", let plan = result.plan {
                print("\(id): the safety gates held its \(revoked) revocations (\(plan.reason ?? "")); `tether approve \(plan.id)` applies them and closes it")
            } else {
                print("\(id) closed; \(revoked) grants revoked")
            }
        }
    }

    struct Links: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print each reviewer's link; --notify sends them to reviews.notify.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The campaign id (r_…).") var id: String
        @Flag(help: "Send them to reviews.notify as well.") var notify = false
        @Flag(help: "Print JSON.") var json = false

        func run() async throws {
            let reply = try options.call("GET", "/v1/reviews/\(encoded(id))/links" + (notify ? "?notify=true" : ""))
            let result = try options.decode(Models.ReviewResult.self, reply)
            if json { Output.printJSON(reply.body); return }
            print(Output.table(
                ["REVIEWER", "EMAIL", "ITEMS", "LINK"], (result.links ?? []).map { [$0.reviewer, $0.email ?? "-", String($0.items), $0.url] },
                empty: "no reviewer has an open item"))
            Reviews.printNotify(result.notify)
        }
    }

    struct Report: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The evidence: who reviewed what, when, what they decided and what was applied, with audit seqs.")
        @OptionGroup var options: GlobalOptions
        @Argument(help: "The campaign id (r_…).") var id: String
        @Option(help: "html, json or csv.") var format: String = "json"

        func run() async throws {
            let reply = try options.call("GET", "/v1/reviews/\(encoded(id))/report?format=\(encoded(format))")
            guard (200..<300).contains(reply.status) else {
                Output.error(GlobalOptions.errorText(reply))
                throw ExitCode(1)
            }
            FileHandle.standardOutput.write(reply.body)
        }
    }

    /// An item's decision as `show` prints it.
    static func decision(_ item: Models.ReviewItemRow) -> String {
        guard let decision = item.decision else { return "-" }
        return "\(decision) by \(item.decidedBy ?? "?")"
    }

    static func printNotify(_ notify: Models.NotifyRow?) {
        guard let notify else { return }
        print("links sent to \(notify.target): \(notify.sent)")
        for (reviewer, reason) in notify.failed.sorted(by: { $0.key < $1.key }) {
            print("not sent to \(reviewer): \(reason)")
        }
    }
}
