import Foundation

/// An operator's request for an access review (`tether reviews start`).
public struct ReviewRequest: Sendable, Hashable {
    public var name: String
    public var scope: ReviewCampaign.Scope
    public var reviewer: ReviewCampaign.ReviewerKind
    public var due: ExceptionRequest.End
    public var ifNoAnswer: ReviewVerdict

    public init(
        name: String, scope: ReviewCampaign.Scope, reviewer: ReviewCampaign.ReviewerKind, due: ExceptionRequest.End,
        ifNoAnswer: ReviewVerdict
    ) {
        self.name = name
        self.scope = scope
        self.reviewer = reviewer
        self.due = due
        self.ifNoAnswer = ifNoAnswer
    }
}

/// What starting, answering or closing a review decided.
public enum ReviewOutcome: Sendable {
    /// The campaign was recorded with its items.
    case started(ReviewCampaign, [ReviewItem])
    /// The reviewer's decision was recorded.
    case decided(ReviewItem)
    /// The campaign closed: its revocations and deny exceptions were applied with `plan`.
    case closed(ReviewCampaign, [ReviewItem], Plan)
    /// The safety gates held the campaign's revocations; `tether approve` applies them and closes it.
    case held(ReviewCampaign, Plan)
    /// Nothing was done, and why (a bad request, a closed campaign, an item no longer held).
    case refused(String)
    /// The reviewer may not answer for this item.
    case forbidden
    /// No campaign or item has that id.
    case notFound
}

/// What one review change decided.
package typealias ReviewDecision = Decision<ReviewOutcome>

extension Decider {
    /// Starts a campaign: one item per (person, agent) with grants in scope, each with its
    /// reviewers and a recommendation from usage.
    /// - Parameter usage: the last allowed check of each grant, in seconds since 1970, by grant id.
    package func startReview(
        _ request: ReviewRequest, id: String, key: Data, usage: [String: Int64], actor: Actor, now: Date,
        reads: any DecisionReads
    ) throws -> ReviewDecision {
        if request.name.trimmingCharacters(in: .whitespaces).isEmpty {
            return ReviewDecision(outcome: .refused("--name must not be empty"))
        }
        // Whole seconds: the links expire at the second, and the store keeps times to the millisecond.
        let due = Date(timeIntervalSince1970: request.due.date(from: now).timeIntervalSince1970.rounded(.down))
        guard due > now else {
            return ReviewDecision(outcome: .refused("--due \(Timestamp.string(due)) is not in the future"))
        }
        var agents = Set(policySet.agents.map(\.id))
        switch request.scope {
        case .all: break
        case .agent(let agent):
            guard agents.contains(agent) else {
                return ReviewDecision(outcome: .refused("agent \(agent) is not configured or registered"))
            }
            agents = [agent]
        case .policy(let policy):
            guard policySet.policies.contains(where: { $0.id == policy }) else {
                return ReviewDecision(outcome: .refused("no policy has id \(policy); `tether check-config` lists the policies"))
            }
        }
        let unusedAfter = configuration.reviewUnusedAfter
        let campaign = ReviewCampaign(
            id: id, name: request.name, scope: request.scope, reviewer: request.reviewer, due: due,
            ifNoAnswer: request.ifNoAnswer, unusedAfter: unusedAfter, createdAt: now, createdBy: actor.description,
            linkKey: key)
        // An autonomous agent's own grants (subject `agent:…`) are declared in configuration:
        // reviewing them is reviewing the configuration, not a person's access.
        let pairs = Dictionary(grouping: try reads.grants(subjects: [], agents: agents).filter {
            !$0.grant.subject.hasPrefix("agent:") && request.scope.covers($0.grant, policy: $0.justified.lineage.policy)
        }) { ReviewPair(subject: $0.grant.subject, agent: $0.grant.agent) }
        guard !pairs.isEmpty else {
            return ReviewDecision(outcome: .refused("nothing to review: no person holds a grant in scope \(request.scope)"))
        }
        var people = PeopleCache(reads: reads)
        var items: [ReviewItem] = []
        for pair in pairs.keys.sorted() {
            let grants = pairs[pair]!.map { stored in
                ReviewedGrant(
                    grant: stored.grant, policy: stored.justified.lineage.policy, grantedAt: stored.grantedAt,
                    lastUsed: usage[stored.id].map { Date(timeIntervalSince1970: Double($0)) })
            }
            let person = try people.identity(pair.subject)
            let (recommendation, reason) = Self.recommendation(for: grants, unusedAfter: unusedAfter, now: now)
            items.append(ReviewItem(
                campaign: id, number: items.count + 1, subject: pair.subject, subjectName: person?.displayName,
                agent: pair.agent, grants: grants,
                reviewers: try reviewers(of: pair, person: person, kind: request.reviewer, people: &people),
                recommendation: recommendation, recommendationReason: reason))
        }
        var changeset = Changeset(time: now)
        changeset.reviewCampaigns = [campaign]
        changeset.reviewItems = items
        changeset.audit.append(AuditEntry(
            action: .reviewStarted, actor: actor, time: now,
            fields: [
                "campaign": id, "name": campaign.name, "scope": campaign.scope.description,
                "reviewer": campaign.reviewer.rawValue, "due": Timestamp.string(due), "ifNoAnswer": campaign.ifNoAnswer.rawValue,
                "items": String(items.count), "unassigned": String(items.count { $0.reviewers.isEmpty }),
            ]))
        return ReviewDecision(outcome: .started(campaign, items), changeset: changeset)
    }

    /// Records a reviewer's decision on one item; audited at once, applied at the close.
    package func decideReview(
        campaign id: String, item number: Int, reviewer: String, verdict: ReviewVerdict, note: String?, now: Date,
        reads: any DecisionReads
    ) throws -> ReviewDecision {
        guard let campaign = try reads.reviewCampaign(id: id), var item = try reads.reviewItem(campaign: id, number: number)
        else { return ReviewDecision(outcome: .notFound) }
        guard item.reviewers.contains(reviewer) else { return ReviewDecision(outcome: .forbidden) }
        guard campaign.status == .open, now < campaign.due else {
            return ReviewDecision(outcome: .refused("the review \(campaign.name) is closed; decisions can no longer change"))
        }
        if item.outcome != nil { return ReviewDecision(outcome: .refused("this item is closed")) }
        let note = note?.trimmingCharacters(in: .whitespacesAndNewlines)
        if let note, note.count > Self.maxNoteLength {
            return ReviewDecision(outcome: .refused("the note is longer than \(Self.maxNoteLength) characters"))
        }
        var changeset = Changeset(time: now)
        if try heldGrants(of: item, reads: reads).isEmpty {
            Self.close(&item, as: .gone, at: now)
            changeset.reviewItems = [item]
            changeset.audit.append(Self.goneEntry(item, actor: .reviewer(reviewer), time: now))
            return ReviewDecision(outcome: .refused("this access was already removed; nothing to decide"), changeset: changeset)
        }
        item.decision = ReviewItem.Decision(verdict: verdict, reviewer: reviewer, note: note?.isEmpty == false ? note : nil, time: now)
        changeset.reviewItems = [item]
        var fields = Self.fields(of: item)
        fields["decision"] = verdict.rawValue
        fields["reviewer"] = reviewer
        if let note = item.decision?.note { fields["note"] = note }
        changeset.audit.append(AuditEntry(action: .reviewDecided, actor: .reviewer(reviewer), time: now, fields: fields))
        return ReviewDecision(outcome: .decided(item), changeset: changeset)
    }

    /// Closes a campaign: every open item takes its reviewer's decision or the campaign's
    /// default, and the revocations apply as one plan under the safety gates. A revoke becomes
    /// a deny exception that names the campaign, so policy does not give the grant back.
    /// - Parameter approving: the held plan an operator approved; the gates are not asked again.
    /// - Parameter closed: told how many items are closed of all there are, as it goes.
    package func closeReview(
        _ id: String, actor: Actor, now: Date, reads: any DecisionReads, approving: String? = nil,
        closed: (@Sendable (Int, Int) -> Void)? = nil
    ) throws -> ReviewDecision {
        guard var campaign = try reads.reviewCampaign(id: id) else { return ReviewDecision(outcome: .notFound) }
        guard campaign.status != .closed else { return ReviewDecision(outcome: .refused("the review \(campaign.name) is already closed")) }
        var closing = try closingPlan(campaign, actor: actor, now: now, reads: reads, closed: closed)
        var changeset = Changeset(time: now)
        if approving == nil, closing.plan.held != nil {
            campaign.status = .closing
            campaign.heldPlan = closing.plan.id
            changeset.reviewCampaigns = [campaign]
            add(closing.plan, agentStates: [], to: &changeset, actor: actor, event: nil, fields: ["campaign": id])
            return ReviewDecision(outcome: .held(campaign, closing.plan), changeset: changeset)
        }
        closing.plan.held = nil
        if let approving {
            changeset.planResolution = (approving, .approved, actor.description)
            changeset.audit.append(AuditEntry(
                action: .planApproved, actor: actor, time: now,
                fields: ["plan": approving, "scope": closing.plan.scope.description, "reason": "approved by \(actor)", "campaign": id]))
        }
        for (item, exceptions) in closing.denies {
            for exception in exceptions {
                var fields = Self.fields(of: exception)
                fields["campaign"] = id
                fields["item"] = String(item)
                changeset.audit.append(AuditEntry(action: .exceptionAdded, actor: actor, time: now, fields: fields))
            }
        }
        changeset.exceptions = closing.denies.flatMap(\.1)
        let start = changeset.audit.count
        add(closing.plan, agentStates: [], to: &changeset, actor: actor, event: nil)
        // Each revocation names the item that asked for it: the report finds it by them.
        let itemOf = Dictionary(
            closing.items.filter { $0.outcome == .revoked || $0.outcome == .revokedByDefault }.map {
                (ReviewPair(subject: $0.subject, agent: $0.agent), $0.number)
            }, uniquingKeysWith: { a, _ in a })
        for index in changeset.audit.indices.dropFirst(start) where changeset.audit[index].action == .grantRevoked {
            let fields = changeset.audit[index].fields
            guard let subject = fields["subject"], let agent = fields["agent"],
                let number = itemOf[ReviewPair(subject: subject, agent: agent)]
            else { continue }
            changeset.audit[index].fields["campaign"] = id
            changeset.audit[index].fields["item"] = String(number)
        }
        for item in closing.items where closing.gone.contains(item.number) {
            changeset.audit.append(Self.goneEntry(item, actor: actor, time: now))
        }
        campaign.status = .closed
        campaign.heldPlan = nil
        campaign.closedAt = now
        campaign.closedBy = actor.description
        changeset.reviewCampaigns = [campaign]
        changeset.reviewItems = closing.items
        var counts: [String: String] = [:]
        for outcome in [ReviewItem.Outcome.kept, .revoked, .keptByDefault, .revokedByDefault, .gone] {
            counts[outcome.rawValue] = String(closing.items.count { $0.outcome == outcome })
        }
        changeset.audit.append(AuditEntry(
            action: .reviewClosed, actor: actor, time: now,
            fields: counts.merging([
                "campaign": id, "name": campaign.name, "plan": closing.plan.id,
                "revocations": String(closing.plan.revocations),
            ]) { a, _ in a }))
        return ReviewDecision(outcome: .closed(campaign, closing.items, closing.plan), changeset: changeset)
    }

    /// The open campaign due first by `now`, if any.
    package func dueReview(now: Date, reads: any DecisionReads) throws -> ReviewCampaign? {
        try reads.reviewCampaigns().filter { $0.status == .open && $0.due <= now }.min { ($0.due, $0.id) < ($1.due, $1.id) }
    }

    /// What closing `campaign` does now: its items as they close, those among them that close
    /// now because their grants went, the deny exceptions for the revoked ones (by item number),
    /// and the plan, with the gates' verdict.
    package func closingPlan(
        _ campaign: ReviewCampaign, actor: Actor, now: Date, reads: any DecisionReads,
        closed: (@Sendable (Int, Int) -> Void)? = nil
    ) throws -> (items: [ReviewItem], gone: [Int], denies: [(Int, [AccessException])], plan: Plan) {
        var items: [ReviewItem] = []
        var gone: [Int] = []
        var denies: [(Int, [AccessException])] = []
        let all = try reads.reviewItems(campaign: campaign.id, reviewer: nil)
        for var item in all {
            defer {
                items.append(item)
                // About a hundred reports, however many items there are.
                if items.count % max(1, all.count / 100) == 0 || items.count == all.count { closed?(items.count, all.count) }
            }
            guard item.outcome == nil else { continue }
            let held = try heldGrants(of: item, reads: reads)
            if held.isEmpty {
                Self.close(&item, as: .gone, at: now)
                gone.append(item.number)
                continue
            }
            let verdict = item.decision?.verdict ?? campaign.ifNoAnswer
            let outcome: ReviewItem.Outcome =
                switch (verdict, item.decision != nil) {
                case (.keep, true): .kept
                case (.revoke, true): .revoked
                case (.keep, false): .keptByDefault
                case (.revoke, false): .revokedByDefault
                }
            Self.close(&item, as: outcome, at: now)
            guard verdict == .revoke else { continue }
            let standing = ExceptionSet(try reads.exceptions(subjects: [item.subject]))
            let why = item.decision.map { "revoked by reviewer \($0.reviewer)" + ($0.note.map { ": \($0)" } ?? "") }
                ?? "no answer by \(Timestamp.string(campaign.due)); the review's default is revoke"
            let exceptions = held.filter { standing.deny(of: $0.grant) == nil }.map { stored in
                AccessException(
                    id: AccessException.newID(), effect: .deny, subject: stored.grant.subject, agent: stored.grant.agent,
                    scope: stored.grant.scope, resource: stored.grant.resource, until: nil,
                    reason: "access review \(campaign.name) (\(campaign.id)): \(why)",
                    approver: item.decision.map { Actor.reviewer($0.reviewer).description } ?? actor.description, createdAt: now)
            }
            if !exceptions.isEmpty { denies.append((item.number, exceptions)) }
        }
        let subjects = Set(denies.flatMap { $0.1.map(\.subject) })
        var exceptions = ExceptionSet(try reads.exceptions(subjects: subjects))
        for exception in denies.flatMap(\.1) { exceptions.insert(exception) }
        let (plan, _) = try scopedPlan(
            scope: .campaign(campaign.id), subjects: subjects, agents: [],
            view: AgentView(next: try reads.agentStates(), changed: [], transitions: [], known: agentsInForce),
            origin: .other, identities: [], exceptions: exceptions, reads: reads)
        return (items, gone, denies, plan)
    }

    /// The item's grants its person still holds: those the reviewer was shown. A grant given
    /// since the campaign started is not under review; it waits for the next one.
    package func heldGrants(of item: ReviewItem, reads: any DecisionReads) throws -> [StoredGrant] {
        let reviewed = Set(item.grants.map(\.grant.id))
        return try reads.grants(subjects: [item.subject], agents: []).filter { reviewed.contains($0.id) }
    }

    private static func close(_ item: inout ReviewItem, as outcome: ReviewItem.Outcome, at now: Date) {
        item.outcome = outcome
        item.closedAt = now
    }

    /// The record of an item that closed itself: its grants went (a leaver, a mover) before
    /// anyone had to decide.
    private static func goneEntry(_ item: ReviewItem, actor: Actor, time: Date) -> AuditEntry {
        AuditEntry(
            action: .reviewItemClosed, actor: actor, time: time,
            fields: fields(of: item).merging(["reason": "its grants were gone before it was decided"]) { a, _ in a })
    }

    /// Revoke when no check allowed any of the grants within `unusedAfter` (a grant never used
    /// counts from when it was made); keep otherwise.
    static func recommendation(for grants: [ReviewedGrant], unusedAfter: TimeInterval, now: Date) -> (ReviewVerdict, String) {
        let cutoff = now.addingTimeInterval(-unusedAfter)
        let used = grants.compactMap(\.lastUsed).max()
        let granted = grants.map(\.grantedAt).max() ?? now
        let period = days(unusedAfter)
        func day(_ date: Date) -> String { String(Timestamp.string(date).prefix(10)) }
        if grants.contains(where: { ($0.lastUsed ?? $0.grantedAt) >= cutoff }) {
            if let used, used >= cutoff { return (.keep, "last used \(day(used))") }
            return (.keep, "granted \(day(granted)), less than \(period) ago; not used since")
        }
        if let used { return (.revoke, "last used \(day(used)), more than \(period) ago") }
        return (.revoke, "never used since it was granted on \(day(granted)), more than \(period) ago")
    }

    /// Who answers for a pair: the agent's active sponsors, or the person's active manager;
    /// the other when there is none. Never the person whose access it is.
    private func reviewers(
        of pair: ReviewPair, person: Identity?, kind: ReviewCampaign.ReviewerKind, people: inout PeopleCache
    ) throws -> [String] {
        var sponsors: [String] = []
        for sponsor in policySet.agent(pair.agent)?.sponsors ?? [] where sponsor != pair.subject {
            if try people.identity(sponsor)?.status == .active { sponsors.append(sponsor) }
        }
        var managers: [String] = []
        if let manager = try person?.manager.flatMap({ try people.identity(id: $0) }), manager.status == .active,
            manager.userName != pair.subject
        {
            managers = [manager.userName]
        }
        switch kind {
        case .sponsor: return sponsors.isEmpty ? managers : sponsors
        case .manager: return managers.isEmpty ? sponsors : managers
        }
    }

    /// The audit fields that name an item.
    static func fields(of item: ReviewItem) -> [String: String] {
        ["campaign": item.campaign, "item": String(item.number), "subject": item.subject, "agent": item.agent]
    }

    /// The longest note a reviewer may leave.
    package static let maxNoteLength = 1000
}

/// A person and an agent: what one review item covers.
struct ReviewPair: Hashable, Comparable {
    var subject: String
    var agent: String

    static func < (lhs: ReviewPair, rhs: ReviewPair) -> Bool { (lhs.subject, lhs.agent) < (rhs.subject, rhs.agent) }
}

/// Identities read once each while a campaign is built.
private struct PeopleCache {
    let reads: any DecisionReads
    var byName: [String: Identity?] = [:]
    var byID: [IdentityID: Identity?] = [:]

    init(reads: any DecisionReads) { self.reads = reads }

    mutating func identity(_ userName: String) throws -> Identity? {
        if let known = byName[userName] { return known }
        let found = try reads.identity(userName: userName)
        byName[userName] = found
        return found
    }

    mutating func identity(id: IdentityID) throws -> Identity? {
        if let known = byID[id] { return known }
        let found = try reads.identity(id: id)
        byID[id] = found
        return found
    }
}

extension Actor {
    /// A reviewer answering through the review page (`reviewer:<userName>`).
    public static func reviewer(_ userName: String) -> Actor { Actor("reviewer:\(userName)") }
}

extension Decision where Outcome == ReviewOutcome {
    /// A campaign's close as the approval of its held plan answers it.
    var approval: ApprovalDecision {
        switch outcome {
        case .closed(_, _, let plan): ApprovalDecision(outcome: .applied(plan), changeset: changeset)
        case .held(_, let plan): ApprovalDecision(outcome: .stale(fresh: plan))
        case .refused, .notFound, .forbidden, .started, .decided: ApprovalDecision(outcome: .notHeld(.approved))
        }
    }
}
