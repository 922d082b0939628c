import Foundation
import TetherCore

/// What the reviewer's page shows, as the template reads it.
struct ReviewerPage {
    struct GrantRow {
        var scope: String
        var resource: String
        var policy: String
        var lastUsed: String
    }

    struct DecisionRow {
        var verdict: String
        var reviewer: String
        var time: String
        var note: String?
    }

    struct ItemRow {
        var number: Int
        var subject: String
        var subjectLabel: String
        var agent: String
        var grants: [GrantRow]
        var recommendation: String
        var recommendationReason: String
        var decision: DecisionRow?
        var gone: Bool
        var open: Bool
        var keepChecked: Bool
        var revokeChecked: Bool
        var noteText: String
        var action: String
        var csrf: String
    }

    var name: String
    var pageTitle: String
    var reviewerLabel: String
    var due: String
    var ifNoAnswerText: String
    var total: Int
    var undecided: Int
    var items: [ItemRow]
    var notice: String?
    var error: String?

    init(
        campaign: ReviewCampaign, reviewer: String, reviewerName: String?, items: [(item: ReviewItem, held: Bool)],
        action: String, csrf: String, notice: String?, error: String?
    ) {
        name = campaign.name
        pageTitle = "\(campaign.name): access review"
        reviewerLabel = reviewerName.map { "\($0) (\(reviewer))" } ?? reviewer
        due = Self.time(campaign.due)
        ifNoAnswerText = campaign.ifNoAnswer == .keep ? "kept" : "revoked"
        total = items.count
        undecided = items.count { $0.item.decision == nil && $0.item.outcome == nil && $0.held }
        self.items = items.map { item, held in
            let open = item.outcome == nil && held
            return ItemRow(
                number: item.number, subject: item.subject,
                subjectLabel: item.subjectName.map { "\($0) (\(item.subject))" } ?? item.subject, agent: item.agent,
                grants: item.grants.map {
                    GrantRow(
                        scope: $0.grant.scope, resource: $0.grant.resource, policy: Self.policy($0.policy),
                        lastUsed: $0.lastUsed.map(Self.time) ?? "never")
                },
                recommendation: item.recommendation.rawValue, recommendationReason: item.recommendationReason,
                decision: item.decision.map {
                    DecisionRow(verdict: $0.verdict.rawValue, reviewer: $0.reviewer, time: Self.time($0.time), note: $0.note)
                },
                gone: item.outcome == .gone || (item.outcome == nil && !held), open: open, keepChecked: item.decision?.verdict == .keep,
                revokeChecked: item.decision?.verdict == .revoke, noteText: item.decision?.note ?? "", action: action, csrf: csrf)
        }
        self.notice = notice
        self.error = error
    }

    /// A lineage policy as a reviewer reads it.
    static func policy(_ policy: String) -> String {
        AccessException.id(fromPolicy: policy).map { "exception \($0)" } ?? "policy \(policy)"
    }

    /// A time as the page shows it: to the minute, in UTC.
    static func time(_ date: Date) -> String {
        let text = Timestamp.string(date)
        return String(text.prefix(16)).replacingOccurrences(of: "T", with: " ") + " UTC"
    }
}
