import Foundation
import TetherCore
import TetherStore

/// The documented JSON of `tether reviews` (SPEC §18).
extension AdminModels {
    /// `POST /v1/reviews`: a campaign to start.
    public struct ReviewBody: Codable, Sendable, Equatable {
        public var name: String
        /// `all`, `agent:ID` or `policy:ID`.
        public var scope: String
        /// `sponsor` or `manager`.
        public var reviewer: String
        /// An RFC 3339 time or a duration from now (`14d`).
        public var due: String
        /// `keep` or `revoke`.
        public var ifNoAnswer: String

        public init(name: String, scope: String, reviewer: String, due: String, ifNoAnswer: String) {
            self.name = name
            self.scope = scope
            self.reviewer = reviewer
            self.due = due
            self.ifNoAnswer = ifNoAnswer
        }
    }

    public struct CampaignRow: Codable, Sendable, Equatable {
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
        /// The plan the safety gates held while it closes: `tether approve` it.
        public var heldPlan: String?
        public var items: Int?
        /// Items with a reviewer's decision.
        public var decided: Int?
        /// Items nobody accountable could be found for: they get the default.
        public var unassigned: Int?

        init(_ campaign: ReviewCampaign, counts: ReviewCounts) {
            self.init(campaign)
            items = counts.items
            decided = counts.decided
            unassigned = counts.unassigned
        }

        init(_ campaign: ReviewCampaign, items: [ReviewItem]? = nil) {
            id = campaign.id
            name = campaign.name
            scope = campaign.scope.description
            reviewer = campaign.reviewer.rawValue
            due = Timestamp.string(campaign.due)
            ifNoAnswer = campaign.ifNoAnswer.rawValue
            status = campaign.status.rawValue
            createdAt = Timestamp.string(campaign.createdAt)
            createdBy = campaign.createdBy
            closedAt = campaign.closedAt.map(Timestamp.string)
            closedBy = campaign.closedBy
            heldPlan = campaign.heldPlan
            if let items {
                self.items = items.count
                decided = items.count { $0.decision != nil }
                unassigned = items.count { $0.reviewers.isEmpty }
            }
        }
    }

    public struct ReviewItemRow: Codable, Sendable, Equatable {
        public struct Grant: Codable, Sendable, Equatable {
            public var scope: String
            public var resource: String
            public var policy: String
            public var lastUsed: String?
        }

        public var number: Int
        public var subject: String
        public var agent: String
        public var reviewers: [String]
        public var grants: [Grant]
        public var recommendation: String
        public var recommendationReason: String
        public var decision: String?
        public var decidedBy: String?
        public var decidedAt: String?
        public var note: String?
        public var outcome: String?

        init(_ item: ReviewItem) {
            number = item.number
            subject = item.subject
            agent = item.agent
            reviewers = item.reviewers
            grants = item.grants.map {
                Grant(scope: $0.grant.scope, resource: $0.grant.resource, policy: $0.policy, lastUsed: $0.lastUsed.map(Timestamp.string))
            }
            recommendation = item.recommendation.rawValue
            recommendationReason = item.recommendationReason
            decision = item.decision?.verdict.rawValue
            decidedBy = item.decision?.reviewer
            decidedAt = item.decision.map { Timestamp.string($0.time) }
            note = item.decision?.note
            outcome = item.outcome?.rawValue
        }
    }

    /// `GET /v1/reviews/{id}`.
    public struct CampaignDetail: Codable, Sendable, Equatable {
        public var campaign: CampaignRow
        public var items: [ReviewItemRow]
    }

    /// One reviewer's link.
    public struct ReviewLinkRow: Codable, Sendable, Equatable {
        public var reviewer: String
        public var displayName: String?
        public var email: String?
        /// The items the reviewer answers for.
        public var items: Int
        public var url: String
    }

    /// What `reviews.notify` made of the links: how many it took, and who it did not reach.
    public struct NotifyRow: Codable, Sendable, Equatable {
        public var target: String
        public var sent: Int
        public var failed: [String: String]
    }

    /// Starting, closing, or asking for the links of a campaign.
    public struct ReviewResult: Codable, Sendable, Equatable {
        /// `started`, `closed`, `held` or `links`.
        public var status: String
        public var campaign: CampaignRow
        public var plan: PlanRow?
        public var links: [ReviewLinkRow]?
        public var notify: NotifyRow?
    }
}
