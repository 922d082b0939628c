import Foundation

/// An access review (SPEC §18): accountable people — an agent's sponsors, or a person's
/// manager — say whether each person should keep what each agent holds for them. Made by
/// `tether reviews start`; its revocations apply at the due date or on `tether reviews close`.
public struct ReviewCampaign: Sendable, Hashable, Codable {
    /// Which grants a campaign reviews.
    public enum Scope: Sendable, Hashable, Codable, CustomStringConvertible {
        /// Every person's grants through every agent.
        case all
        /// The grants through one agent.
        case agent(String)
        /// The grants one policy gives.
        case policy(String)

        public var description: String {
            switch self {
            case .all: "all"
            case .agent(let id): "agent:\(id)"
            case .policy(let id): "policy:\(id)"
            }
        }

        /// `all`, `agent:ID` or `policy:ID`.
        public init?(_ text: String) {
            if text == "all" {
                self = .all
            } else if text.hasPrefix("agent:"), text.count > "agent:".count {
                self = .agent(String(text.dropFirst("agent:".count)))
            } else if text.hasPrefix("policy:"), text.count > "policy:".count {
                self = .policy(String(text.dropFirst("policy:".count)))
            } else {
                return nil
            }
        }

        public init(from decoder: any Decoder) throws {
            let text = try decoder.singleValueContainer().decode(String.self)
            guard let scope = Scope(text) else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "review scope \(text)"))
            }
            self = scope
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.singleValueContainer()
            try container.encode(description)
        }

        /// Whether a grant with this lineage policy is under review.
        public func covers(_ grant: Grant, policy: String) -> Bool {
            switch self {
            case .all: true
            case .agent(let id): grant.agent == id
            case .policy(let id): policy == id
            }
        }
    }

    /// Who answers for an item.
    public enum ReviewerKind: String, Sendable, Hashable, Codable {
        /// The agent's active sponsors.
        case sponsor
        /// The person's manager.
        case manager
    }

    /// Where a campaign is.
    public enum Status: String, Sendable, Hashable, Codable {
        /// Reviewers can decide.
        case open
        /// Closing: its revocations wait in a plan the safety gates held.
        case closing
        /// Done: decisions and defaults applied.
        case closed
    }

    /// `r_` + 32 hex digits.
    public var id: String
    public var name: String
    public var scope: Scope
    public var reviewer: ReviewerKind
    /// When the links stop working and the defaults apply.
    public var due: Date
    /// What an item no reviewer answered gets at the close.
    public var ifNoAnswer: ReviewVerdict
    /// How long a grant must go without an allowed check to be recommended for removal.
    public var unusedAfter: TimeInterval
    public var createdAt: Date
    /// Who started it (`operator:<unix user>`).
    public var createdBy: String
    public var status: Status
    /// The plan the safety gates held while closing.
    public var heldPlan: String?
    public var closedAt: Date?
    public var closedBy: String?
    /// The secret that signs this campaign's reviewer links and form tokens: 32 random bytes,
    /// kept in the store and never shown.
    public var linkKey: Data

    public init(
        id: String, name: String, scope: Scope, reviewer: ReviewerKind, due: Date, ifNoAnswer: ReviewVerdict,
        unusedAfter: TimeInterval, createdAt: Date, createdBy: String, status: Status = .open, linkKey: Data
    ) {
        self.id = id
        self.name = name
        self.scope = scope
        self.reviewer = reviewer
        self.due = due
        self.ifNoAnswer = ifNoAnswer
        self.unusedAfter = unusedAfter
        self.createdAt = createdAt
        self.createdBy = createdBy
        self.status = status
        self.linkKey = linkKey
    }

    /// A fresh id: `r_` and 128 random bits in hex.
    public static func newID() -> String {
        var generator = SystemRandomNumberGenerator()
        return Hex.encode(prefix: "r_", high: generator.next(), low: generator.next())
    }

    /// A fresh link key: 32 random bytes.
    public static func newLinkKey() -> Data {
        var generator = SystemRandomNumberGenerator()
        return Data((0..<4).flatMap { _ in withUnsafeBytes(of: generator.next() as UInt64) { Array($0) } })
    }
}

/// A reviewer's answer: keep the access, or revoke it.
public enum ReviewVerdict: String, Sendable, Hashable, Codable {
    case keep, revoke
}

/// One grant as a review item shows it.
public struct ReviewedGrant: Sendable, Hashable, Codable {
    public var grant: Grant
    /// The policy that derives it (`exception:x_…` for an exception's grant).
    public var policy: String
    public var grantedAt: Date
    /// The last check that allowed it; nil when none has.
    public var lastUsed: Date?

    public init(grant: Grant, policy: String, grantedAt: Date, lastUsed: Date?) {
        self.grant = grant
        self.policy = policy
        self.grantedAt = grantedAt
        self.lastUsed = lastUsed
    }
}

/// One (person, agent) pair under review: the grants the agent holds for the person, who may
/// answer for them, what Tether recommends, and what was decided and done.
public struct ReviewItem: Sendable, Hashable, Codable {
    /// A reviewer's decision.
    public struct Decision: Sendable, Hashable, Codable {
        public var verdict: ReviewVerdict
        /// The reviewer's userName.
        public var reviewer: String
        public var note: String?
        public var time: Date

        public init(verdict: ReviewVerdict, reviewer: String, note: String?, time: Date) {
            self.verdict = verdict
            self.reviewer = reviewer
            self.note = note
            self.time = time
        }
    }

    /// What became of the item when it closed.
    public enum Outcome: String, Sendable, Hashable, Codable {
        /// A reviewer kept the access.
        case kept
        /// A reviewer revoked it, and the revocation was applied.
        case revoked
        /// Nobody answered; the campaign's default kept it.
        case keptByDefault = "kept-by-default"
        /// Nobody answered; the campaign's default revoked it.
        case revokedByDefault = "revoked-by-default"
        /// The grants were gone before the close (a leaver, a mover): nothing to decide.
        case gone
    }

    public var campaign: String
    /// 1, 2, … in the campaign.
    public var number: Int
    /// The person's userName.
    public var subject: String
    public var subjectName: String?
    public var agent: String
    public var grants: [ReviewedGrant]
    /// Who may answer: userNames; empty when nobody accountable could be found (the item
    /// gets the campaign's default).
    public var reviewers: [String]
    public var recommendation: ReviewVerdict
    /// Why, in a sentence.
    public var recommendationReason: String
    public var decision: Decision?
    public var outcome: Outcome?
    public var closedAt: Date?

    public init(
        campaign: String, number: Int, subject: String, subjectName: String?, agent: String, grants: [ReviewedGrant],
        reviewers: [String], recommendation: ReviewVerdict, recommendationReason: String
    ) {
        self.campaign = campaign
        self.number = number
        self.subject = subject
        self.subjectName = subjectName
        self.agent = agent
        self.grants = grants
        self.reviewers = reviewers
        self.recommendation = recommendation
        self.recommendationReason = recommendationReason
    }

    /// The latest use of any of its grants.
    public var lastUsed: Date? { grants.compactMap(\.lastUsed).max() }
}
