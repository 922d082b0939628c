import Foundation
import TetherCore
import TetherStore

/// The evidence of an access review (`tether reviews report`, SPEC §18): who reviewed what,
/// when, what they decided and what was applied, each with the seq of the audit record that
/// states it, so an auditor can check every line against `tether audit`.
public struct ReviewReport: Sendable, Codable, Hashable {
    public struct Campaign: Sendable, Codable, Hashable {
        public var id: String
        public var name: String
        public var scope: String
        public var reviewer: String
        public var due: String
        public var ifNoAnswer: String
        public var status: String
        public var createdAt: String
        public var createdBy: String
        public var closedAt: String?
        public var closedBy: String?
        /// The `review.started` record.
        public var startedSeq: Int?
        /// The `review.closed` record.
        public var closedSeq: Int?
    }

    public struct GrantLine: Sendable, Codable, Hashable {
        public var scope: String
        public var resource: String
        public var policy: String
        public var lastUsed: String?
    }

    public struct Item: Sendable, Codable, Hashable {
        public var number: Int
        public var subject: String
        public var agent: String
        public var reviewers: [String]
        public var grants: [GrantLine]
        public var recommendation: String
        /// The decision in force: `keep` or `revoke`; nil when nobody answered.
        public var decision: String?
        public var decidedBy: String?
        public var decidedAt: String?
        public var note: String?
        /// The `review.decided` record of the decision in force.
        public var decisionSeq: Int?
        /// Every `review.decided` record of the item, earlier answers included.
        public var decisionSeqs: [Int]
        /// `kept`, `revoked`, `kept-by-default`, `revoked-by-default`, `gone`; nil while open.
        public var outcome: String?
        /// The records of what closing it applied: deny exceptions, revocations, or its
        /// closing by itself.
        public var appliedSeqs: [Int]
    }

    /// Items by agent and outcome.
    public struct AgentSummary: Sendable, Codable, Hashable {
        public var agent: String
        public var kept = 0
        public var revoked = 0
        public var keptByDefault = 0
        public var revokedByDefault = 0
        public var gone = 0
        public var open = 0
    }

    public var campaign: Campaign
    public var items: [Item]
    public var summary: [AgentSummary]

    /// The report of `campaign` and its `items` from the audit `records` that name the campaign.
    public init(campaign: ReviewCampaign, items: [ReviewItem], records: [AuditRecord]) {
        var started: Int?
        var closed: Int?
        var decided: [Int: [Int]] = [:]
        var applied: [Int: [Int]] = [:]
        for record in records where record["campaign"] == campaign.id {
            let seq = record.seq
            let item = record["item"].flatMap(Int.init)
            switch record.action {
            case AuditAction.reviewStarted.rawValue: started = seq
            case AuditAction.reviewClosed.rawValue: closed = seq
            case AuditAction.reviewDecided.rawValue: if let item { decided[item, default: []].append(seq) }
            case AuditAction.exceptionAdded.rawValue, AuditAction.grantRevoked.rawValue, AuditAction.reviewItemClosed.rawValue:
                if let item { applied[item, default: []].append(seq) }
            default: break
            }
        }
        self.campaign = Campaign(
            id: campaign.id, name: campaign.name, scope: campaign.scope.description, reviewer: campaign.reviewer.rawValue,
            due: Timestamp.string(campaign.due), ifNoAnswer: campaign.ifNoAnswer.rawValue, status: campaign.status.rawValue,
            createdAt: Timestamp.string(campaign.createdAt), createdBy: campaign.createdBy,
            closedAt: campaign.closedAt.map(Timestamp.string), closedBy: campaign.closedBy, startedSeq: started, closedSeq: closed)
        self.items = items.map { item in
            Item(
                number: item.number, subject: item.subject, agent: item.agent, reviewers: item.reviewers,
                grants: item.grants.map {
                    GrantLine(
                        scope: $0.grant.scope, resource: $0.grant.resource, policy: $0.policy,
                        lastUsed: $0.lastUsed.map(Timestamp.string))
                },
                recommendation: item.recommendation.rawValue, decision: item.decision?.verdict.rawValue,
                decidedBy: item.decision?.reviewer, decidedAt: item.decision.map { Timestamp.string($0.time) },
                note: item.decision?.note, decisionSeq: item.decision == nil ? nil : decided[item.number]?.last,
                decisionSeqs: decided[item.number] ?? [], outcome: item.outcome?.rawValue,
                appliedSeqs: applied[item.number] ?? [])
        }
        var byAgent: [String: AgentSummary] = [:]
        for item in items {
            var summary = byAgent[item.agent] ?? AgentSummary(agent: item.agent)
            switch item.outcome {
            case .kept: summary.kept += 1
            case .revoked: summary.revoked += 1
            case .keptByDefault: summary.keptByDefault += 1
            case .revokedByDefault: summary.revokedByDefault += 1
            case .gone: summary.gone += 1
            case nil: summary.open += 1
            }
            byAgent[item.agent] = summary
        }
        summary = byAgent.values.sorted { $0.agent < $1.agent }
    }
}

extension Engine {
    /// The report of campaign `id`, or nil when there is none.
    public func reviewReport(id: String) async throws -> ReviewReport? {
        guard let campaign = try await store.reviewCampaign(id: id) else { return nil }
        let items = try await standingReviewItems(campaign: id)
        // Every record that names the campaign was written at or after its start.
        let records = try await store.auditRecords(AuditQuery(since: campaign.createdAt))
        return ReviewReport(campaign: campaign, items: items, records: records)
    }
}
