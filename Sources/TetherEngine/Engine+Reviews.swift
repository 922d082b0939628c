import Foundation
import TetherCore
import TetherStore

/// Access reviews (SPEC §18): campaigns started by operators, answered by reviewers through
/// their links, closed at the due date or by an operator.
extension Engine {
    /// Starts a campaign over the grants in `request`'s scope.
    /// - Parameter usage: the last allowed check of each grant, in seconds since 1970, by grant id.
    public func startReview(_ request: ReviewRequest, usage: [String: Int64], actor: Actor) async throws -> ReviewOutcome {
        try await lock()
        defer { gate.unlock() }
        let (decider, now, id, key) = (decider, clock.now(), ReviewCampaign.newID(), ReviewCampaign.newLinkKey())
        let decision = try await store.inspect { reads in
            try decider.startReview(request, id: id, key: key, usage: usage, actor: actor, now: now, reads: reads)
        }
        if let changeset = decision.changeset { try await commit(changeset) }
        return decision.outcome
    }

    /// Who a reviewer's link lets in: the campaign and the reviewer, when `token` is one this
    /// campaign signed, has not expired and the campaign is still open.
    public func reviewAccess(token: String) async throws -> ReviewAccess {
        guard let id = ReviewLink.campaign(of: token), let campaign = try await store.reviewCampaign(id: id) else {
            return .refused(.unknown)
        }
        let link: ReviewLink
        do {
            link = try ReviewLink.verify(token, key: campaign.linkKey, now: clock.now())
        } catch .expired {
            return .refused(.expired)
        } catch {
            return .refused(.unknown)
        }
        guard campaign.status == .open else { return .refused(.closed(campaign)) }
        return .granted(campaign, link)
    }

    /// The items a reviewer answers for, each with whether its grants are still held (an item
    /// whose grants went closes itself and needs no answer).
    public func reviewerItems(_ link: ReviewLink) async throws -> [(item: ReviewItem, held: Bool)] {
        try await reviewItems(campaign: link.campaign, reviewer: link.reviewer)
    }

    /// A campaign's items (only `reviewer`'s when given), each with whether its grants are
    /// still held; an item already closed is not.
    public func reviewItems(campaign id: String, reviewer: String? = nil) async throws -> [(item: ReviewItem, held: Bool)] {
        let decider = decider
        return try await store.inspect { reads in
            try reads.reviewItems(campaign: id, reviewer: reviewer).map { item in
                (item, item.outcome == nil ? !(try decider.heldGrants(of: item, reads: reads).isEmpty) : false)
            }
        }
    }

    /// A campaign's items as they stand: an open item whose grants went shows as `gone`, as
    /// it closed itself; the close records it. Empty for no such campaign.
    public func standingReviewItems(campaign id: String) async throws -> [ReviewItem] {
        guard let campaign = try await store.reviewCampaign(id: id) else { return [] }
        return try await reviewItems(campaign: id).map { item, held in
            var item = item
            if item.outcome == nil, !held, campaign.status != .closed { item.outcome = .gone }
            return item
        }
    }

    /// Records the decision of the reviewer `link` names on item `number`, audited at once.
    public func decideReview(
        _ link: ReviewLink, item number: Int, verdict: ReviewVerdict, note: String?
    ) async throws -> ReviewOutcome {
        try await lock()
        defer { gate.unlock() }
        let (decider, now) = (decider, clock.now())
        let decision = try await store.inspect { reads in
            try decider.decideReview(
                campaign: link.campaign, item: number, reviewer: link.reviewer, verdict: verdict, note: note, now: now,
                reads: reads)
        }
        if let changeset = decision.changeset { try await commit(changeset) }
        return decision.outcome
    }

    /// Closes campaign `id` now (`tether reviews close`): decisions and defaults applied as
    /// one plan under the safety gates.
    /// - Parameter progress: told where the close is as it goes (`tether status`).
    public func closeReview(
        id: String, actor: Actor, progress: (@Sendable (ReviewCloseProgress) -> Void)? = nil
    ) async throws -> ReviewOutcome {
        try await lock()
        defer { gate.unlock() }
        return try await closeReviewHoldingLock(id: id, actor: actor, progress: progress).outcome
    }

    /// Closes campaign `id` under the gate, which the caller holds; nil changeset: nothing to commit.
    private func closeReviewHoldingLock(
        id: String, actor: Actor, progress: (@Sendable (ReviewCloseProgress) -> Void)?
    ) async throws -> ReviewDecision {
        let (decider, now) = (decider, clock.now())
        let closed: (@Sendable (Int, Int) -> Void)? =
            if let progress { { done, total in progress(.closing(done: done, of: total)) } } else { nil }
        let decision = try await store.inspect { reads in
            try decider.closeReview(id, actor: actor, now: now, reads: reads, closed: closed)
        }
        if let changeset = decision.changeset {
            progress?(.committing(changes: changeset.steps.count + changeset.exceptions.count + changeset.reviewItems.count))
            try await commit(changeset)
        }
        return decision
    }

    /// Closes every open campaign whose due date has come, each in its own commit, earliest
    /// first; returns what each close decided. The scheduler calls it on every turn, so a
    /// campaign that came due while the daemon was stopped closes on its first turn.
    @discardableResult
    public func closeDueReviews(progress: (@Sendable (ReviewCloseProgress) -> Void)? = nil) async throws -> [ReviewOutcome] {
        try await lock()
        defer { gate.unlock() }
        var outcomes: [ReviewOutcome] = []
        let decider = decider
        while true {
            let now = clock.now()
            guard let due = try await store.inspect({ reads in try decider.dueReview(now: now, reads: reads) }) else {
                return outcomes
            }
            let decision = try await closeReviewHoldingLock(id: due.id, actor: .scheduler, progress: progress)
            guard decision.changeset != nil else { return outcomes }
            outcomes.append(decision.outcome)
        }
    }
}

/// Where a campaign's close is.
public enum ReviewCloseProgress: Sendable, Hashable {
    /// Items closed so far (each checked for its grants, given its outcome), of all there are.
    case closing(done: Int, of: Int)
    /// The close is being committed: its revocations, deny exceptions and items.
    case committing(changes: Int)
}

/// Whether a reviewer's link opens the page.
public enum ReviewAccess: Sendable {
    case granted(ReviewCampaign, ReviewLink)
    case refused(Refusal)

    /// Why a link does not open the page; the browser hears 403 for each.
    public enum Refusal: Sendable {
        /// Forged, malformed, or for no campaign this store holds.
        case unknown
        case expired
        /// The campaign is closing or closed.
        case closed(ReviewCampaign)
    }
}
