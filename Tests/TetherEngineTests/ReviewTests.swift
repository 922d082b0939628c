import Foundation
import Synchronization
import Testing
import TetherCore
import TetherEngine
import TetherStore

/// Access reviews (SPEC §18) through a real engine over SQLite, on a clock the tests move.
@Suite struct ReviewTests {
    static let operatorActor = Actor("operator:root")
    static let day: TimeInterval = 86_400

    /// The sponsors (jdoe sponsors support-copilot; mkhan, an HR partner managed by boss,
    /// sponsors hr-assistant), and alice and carol in support, each with two grants.
    static func world(safety: SafetyLimits? = nil) async throws -> World {
        let world =
            if let safety { try World(safety: safety) } else { try World() }
        try await world.seedSponsors()
        for (user, number) in [("alice", "1001"), ("carol", "1003")] {
            _ = try await world.engine.submit(Events.ldapEvent(Events.ldap(
                user, version: 2, groups: ["support"], department: "Support", employeeNumber: number, manager: "uuid-boss")))
        }
        try await world.engine.loadIndex()
        return world
    }

    static func request(
        scope: ReviewCampaign.Scope = .all, reviewer: ReviewCampaign.ReviewerKind = .sponsor, due: TimeInterval = 14 * day,
        ifNoAnswer: ReviewVerdict = .revoke
    ) -> ReviewRequest {
        ReviewRequest(name: "Q4 agent access", scope: scope, reviewer: reviewer, due: .after(due), ifNoAnswer: ifNoAnswer)
    }

    static func started(_ outcome: ReviewOutcome) throws -> (ReviewCampaign, [ReviewItem]) {
        guard case .started(let campaign, let items) = outcome else {
            Issue.record("expected the review to start, got \(outcome)")
            throw CancellationError()
        }
        return (campaign, items)
    }

    static func link(_ campaign: ReviewCampaign, _ reviewer: String) -> ReviewLink {
        ReviewLink(campaign: campaign.id, reviewer: reviewer, expires: campaign.due)
    }

    static func item(_ items: [ReviewItem], _ subject: String) throws -> ReviewItem {
        try #require(items.first { $0.subject == subject })
    }

    @Test func aCampaignHasAnItemPerPersonAndAgentWithItsReviewersAndARecommendationFromUsage() async throws {
        let world = try await Self.world()
        // Forty days on: alice used tickets:read yesterday, carol never used hers.
        world.clock.advance(by: 40 * Self.day)
        let alice = try await world.store.grants(subject: "alice", agent: nil)
        let used = try #require(alice.first { $0.grant.scope == "tickets:read" })
        let yesterday = Int64(world.clock.now().timeIntervalSince1970 - Self.day)
        let (campaign, items) = try Self.started(try await world.engine.startReview(
            Self.request(), usage: [used.id: yesterday], actor: Self.operatorActor))

        #expect(campaign.id.hasPrefix("r_"))
        #expect(campaign.status == .open)
        #expect(campaign.due == world.clock.now().addingTimeInterval(14 * Self.day))
        #expect(items.map { "\($0.number) \($0.subject) \($0.agent) \($0.reviewers)" } == [
            "1 alice support-copilot [\"jdoe\"]", "2 carol support-copilot [\"jdoe\"]",
            // mkhan sponsors hr-assistant: nobody reviews their own access, so their manager does.
            "3 mkhan hr-assistant [\"boss\"]",
        ])
        let aliceItem = try Self.item(items, "alice")
        #expect(aliceItem.grants.count == 2)
        #expect(aliceItem.recommendation == .keep)
        #expect(aliceItem.lastUsed == Date(timeIntervalSince1970: Double(yesterday)))
        let carolItem = try Self.item(items, "carol")
        #expect(carolItem.recommendation == .revoke)
        #expect(carolItem.recommendationReason.hasPrefix("never used"))
        #expect(carolItem.grants.allSatisfy { $0.policy == "support-tickets" && $0.lastUsed == nil })

        let started = try #require(try await world.store.auditRecords(AuditQuery()).last)
        #expect(started.action == "review.started")
        #expect(started["actor"] == "operator:root")
        #expect(started["campaign"] == campaign.id)
        #expect(started["items"] == "3")
        // The link key is the campaign's own, and stored with it.
        #expect(try await world.store.reviewCampaign(id: campaign.id)?.linkKey == campaign.linkKey)
        #expect(campaign.linkKey.count == 32)
    }

    @Test func aScopeNarrowsTheItemsAndManagersReviewWhenAsked() async throws {
        let world = try await Self.world()
        let (_, byAgent) = try Self.started(try await world.engine.startReview(
            Self.request(scope: .agent("hr-assistant"), reviewer: .manager), usage: [:], actor: Self.operatorActor))
        #expect(byAgent.map { "\($0.subject) \($0.reviewers)" } == ["mkhan [\"boss\"]"])
        let (_, byPolicy) = try Self.started(try await world.engine.startReview(
            Self.request(scope: .policy("support-tickets"), reviewer: .manager), usage: [:], actor: Self.operatorActor))
        #expect(byPolicy.map { "\($0.subject) \($0.reviewers)" } == ["alice [\"boss\"]", "carol [\"boss\"]"])

        for (request, why) in [
            (Self.request(scope: .agent("nope")), "agent nope is not configured or registered"),
            (Self.request(scope: .policy("nope")), "no policy has id nope"),
            (Self.request(due: -60), "is not in the future"),
            (Self.request(scope: .agent("ledger-bot")), "nothing to review"),
        ] {
            guard case .refused(let reason) = try await world.engine.startReview(request, usage: [:], actor: Self.operatorActor) else {
                Issue.record("expected a refusal naming \(why)")
                continue
            }
            #expect(reason.contains(why))
        }
    }

    @Test func reviewersDecideTheirOwnItemsOnlyAndEveryDecisionIsAuditedAtOnce() async throws {
        let world = try await Self.world()
        let (campaign, items) = try Self.started(try await world.engine.startReview(
            Self.request(), usage: [:], actor: Self.operatorActor))
        let alice = try Self.item(items, "alice")
        let jdoe = Self.link(campaign, "jdoe")

        guard case .decided(let first) = try await world.engine.decideReview(jdoe, item: alice.number, verdict: .revoke, note: nil)
        else {
            Issue.record("the sponsor decides")
            return
        }
        #expect(first.decision?.verdict == .revoke)
        // A decision can change until the close; the last one stands.
        guard case .decided(let second) = try await world.engine.decideReview(
            jdoe, item: alice.number, verdict: .keep, note: "  still on the escalations rota  ")
        else {
            Issue.record("the sponsor changes their mind")
            return
        }
        #expect(second.decision?.note == "still on the escalations rota")
        let decided = try await world.store.auditRecords(AuditQuery(subject: "alice")).filter { $0.action == "review.decided" }
        #expect(decided.map { $0["actor"] } == ["reviewer:jdoe", "reviewer:jdoe"])
        #expect(decided.map { $0["decision"] } == ["revoke", "keep"])
        #expect(decided.last?["item"] == String(alice.number))
        #expect(decided.last?["note"] == "still on the escalations rota")

        // boss reviews mkhan's item, not alice's.
        guard case .forbidden = try await world.engine.decideReview(
            Self.link(campaign, "boss"), item: alice.number, verdict: .revoke, note: nil)
        else {
            Issue.record("a reviewer cannot decide another reviewer's item")
            return
        }
        guard case .notFound = try await world.engine.decideReview(jdoe, item: 99, verdict: .keep, note: nil) else {
            Issue.record("no item 99")
            return
        }
        guard case .refused = try await world.engine.decideReview(
            jdoe, item: alice.number, verdict: .keep, note: String(repeating: "x", count: 1001))
        else {
            Issue.record("a note longer than 1000 characters is refused")
            return
        }
        // Past the due date, nothing changes.
        world.clock.advance(by: 15 * Self.day)
        guard case .refused = try await world.engine.decideReview(jdoe, item: alice.number, verdict: .revoke, note: nil) else {
            Issue.record("no decision after the due date")
            return
        }
        #expect(try await world.store.reviewItems(campaign: campaign.id).first?.decision?.verdict == .keep)
    }

    @Test func closingAppliesDecisionsAndDefaultsAsDenyExceptionsThatPolicyDoesNotUndo() async throws {
        let world = try await Self.world()
        let (campaign, items) = try Self.started(try await world.engine.startReview(
            Self.request(ifNoAnswer: .revoke), usage: [:], actor: Self.operatorActor))
        let jdoe = Self.link(campaign, "jdoe")
        _ = try await world.engine.decideReview(jdoe, item: try Self.item(items, "alice").number, verdict: .keep, note: nil)
        _ = try await world.engine.decideReview(
            jdoe, item: try Self.item(items, "carol").number, verdict: .revoke, note: "moved to sales")

        guard case .closed(let closed, let outcomes, let plan) = try await world.engine.closeReview(
            id: campaign.id, actor: Self.operatorActor)
        else {
            Issue.record("the review closes")
            return
        }
        #expect(closed.status == .closed)
        #expect(closed.closedBy == "operator:root")
        #expect(outcomes.map { "\($0.subject) \($0.outcome?.rawValue ?? "-")" } == [
            "alice kept", "carol revoked", "mkhan revoked-by-default",
        ])
        #expect(plan.revocations == 3)
        #expect(try await world.grantLines().filter { !$0.hasPrefix("agent:") }.sorted() == [
            "alice support-copilot tickets:read zendesk:queue/Support",
            "alice support-copilot tickets:write zendesk:queue/Support",
        ])
        #expect(!world.engine.index.decide(CheckRequest(
            subject: "carol", agent: "support-copilot", scope: "tickets:read", resource: "zendesk:queue/Support")).allowed)

        let denies = try await world.store.exceptions()
        #expect(denies.count == 3)
        #expect(denies.allSatisfy { $0.effect == .deny && $0.until == nil && $0.reason.contains(campaign.id) })
        #expect(denies.filter { $0.subject == "carol" }.allSatisfy { $0.approver == "reviewer:jdoe" && $0.reason.hasSuffix("moved to sales") })
        #expect(denies.filter { $0.subject == "mkhan" }.allSatisfy { $0.approver == "operator:root" && $0.reason.contains("no answer") })
        // Policy still derives carol's grants; the denies keep them revoked.
        #expect(try await world.engine.reconcile(origin: .other, actor: .policy).plan.isEmpty)

        let records = try await world.store.auditRecords(AuditQuery()).filter { $0["campaign"] == campaign.id }
        #expect(records.last?.action == "review.closed")
        #expect(records.last?["revoked"] == "1")
        #expect(records.last?["revoked-by-default"] == "1")
        #expect(records.filter { $0.action == "grant.revoked" }.count == 3)
        #expect(records.filter { $0.action == "exception.added" }.count == 3)

        guard case .refused = try await world.engine.closeReview(id: campaign.id, actor: Self.operatorActor) else {
            Issue.record("a closed review does not close again")
            return
        }
    }

    @Test func theReportsEveryLineMatchesTheAuditLog() async throws {
        let world = try await Self.world()
        let (campaign, items) = try Self.started(try await world.engine.startReview(
            Self.request(ifNoAnswer: .keep), usage: [:], actor: Self.operatorActor))
        let jdoe = Self.link(campaign, "jdoe")
        _ = try await world.engine.decideReview(jdoe, item: try Self.item(items, "carol").number, verdict: .keep, note: nil)
        _ = try await world.engine.decideReview(jdoe, item: try Self.item(items, "carol").number, verdict: .revoke, note: nil)
        _ = try await world.engine.closeReview(id: campaign.id, actor: Self.operatorActor)

        let report = try #require(try await world.engine.reviewReport(id: campaign.id))
        let byseq = Dictionary(uniqueKeysWithValues: try await world.store.auditRecords(AuditQuery()).map { ($0.seq, $0) })
        #expect(report.campaign.startedSeq.flatMap { byseq[$0]?.action } == "review.started")
        #expect(report.campaign.closedSeq.flatMap { byseq[$0]?.action } == "review.closed")
        #expect(report.items.map { $0.outcome } == ["kept-by-default", "revoked", "kept-by-default"])
        for item in report.items {
            if let seq = item.decisionSeq {
                let record = try #require(byseq[seq])
                #expect(record.action == "review.decided")
                #expect(record["item"] == String(item.number) && record["decision"] == item.decision && record["actor"] == "reviewer:\(item.decidedBy!)")
            }
            for seq in item.appliedSeqs {
                let record = try #require(byseq[seq])
                #expect(["exception.added", "grant.revoked"].contains(record.action))
                #expect(record["subject"] == item.subject && record["agent"] == item.agent)
            }
        }
        let carol = try #require(report.items.first { $0.subject == "carol" })
        #expect(carol.decisionSeqs.count == 2)
        #expect(carol.decisionSeq == carol.decisionSeqs.last)
        #expect(carol.appliedSeqs.count == 4)
        #expect(report.summary.map { "\($0.agent) \($0.kept) \($0.revoked) \($0.keptByDefault)" } == [
            "hr-assistant 0 0 1", "support-copilot 0 1 1",
        ])
    }

    @Test func anItemWhoseGrantsWentClosesItselfAndNeedsNoAnswer() async throws {
        let world = try await Self.world()
        let (campaign, items) = try Self.started(try await world.engine.startReview(
            Self.request(ifNoAnswer: .revoke), usage: [:], actor: Self.operatorActor))
        // alice leaves during the campaign.
        _ = try await world.engine.submit(Events.ldapEvent(Events.ldap(
            "alice", version: 3, groups: ["support"], department: "Support", status: .terminated, employeeNumber: "1001")))
        let alice = try Self.item(items, "alice")
        let seen = try await world.engine.reviewerItems(Self.link(campaign, "jdoe"))
        #expect(seen.map { "\($0.item.subject) \($0.held)" } == ["alice false", "carol true"])
        // alice's item closed itself: the report says so before anything is recorded.
        let report = try #require(try await world.engine.reviewReport(id: campaign.id))
        #expect(report.items.map { $0.outcome ?? "open" } == ["gone", "open", "open"])
        #expect(try await world.store.reviewItems(campaign: campaign.id).first?.outcome == nil)
        guard case .refused(let why) = try await world.engine.decideReview(
            Self.link(campaign, "jdoe"), item: alice.number, verdict: .revoke, note: nil)
        else {
            Issue.record("an item whose grants went takes no decision")
            return
        }
        #expect(why.contains("already removed"))
        #expect(try await world.store.reviewItems(campaign: campaign.id).first?.outcome == .gone)

        guard case .closed(_, let outcomes, _) = try await world.engine.closeReview(id: campaign.id, actor: Self.operatorActor) else {
            Issue.record("the review closes")
            return
        }
        #expect(outcomes.map { $0.outcome?.rawValue ?? "-" } == ["gone", "revoked-by-default", "revoked-by-default"])
        // Closed once, audited once; alice gets no deny exception.
        #expect(try await world.auditActions().count { $0 == "review.item_closed" } == 1)
        #expect(try await world.store.exceptions().allSatisfy { $0.subject != "alice" })
    }

    @Test func aMoversNewGrantsAreNotUnderReviewAndTheOldOnesGoingClosesTheItem() async throws {
        let world = try await Self.world()
        let (campaign, _) = try Self.started(try await world.engine.startReview(
            Self.request(scope: .agent("support-copilot"), ifNoAnswer: .revoke), usage: [:], actor: Self.operatorActor))
        // alice moves to Success: her Support queue grants go, Success queue grants come.
        _ = try await world.engine.submit(Events.ldapEvent(Events.ldap(
            "alice", version: 3, groups: ["support"], department: "Success", employeeNumber: "1001", manager: "uuid-boss")))
        guard case .closed(_, let outcomes, _) = try await world.engine.closeReview(id: campaign.id, actor: Self.operatorActor) else {
            Issue.record("the review closes")
            return
        }
        #expect(outcomes.map { "\($0.subject) \($0.outcome?.rawValue ?? "-")" } == ["alice gone", "carol revoked-by-default"])
        // What she was given after the campaign started was never shown to a reviewer: it stays.
        #expect(try await world.grantLines().filter { $0.hasPrefix("alice ") }.sorted() == [
            "alice support-copilot tickets:read zendesk:queue/Success",
            "alice support-copilot tickets:write zendesk:queue/Success",
        ])
        #expect(try await world.store.exceptions().allSatisfy { $0.subject == "carol" })
    }

    @Test func theSafetyGatesHoldALargeCloseUntilAnOperatorApprovesIt() async throws {
        let world = try await Self.world(safety: SafetyLimits(maxRevocationsPerRun: 2, maxRevocationRatio: 1, minGrantsForRatio: 1_000_000))
        let (campaign, _) = try Self.started(try await world.engine.startReview(
            Self.request(ifNoAnswer: .revoke), usage: [:], actor: Self.operatorActor))
        guard case .held(let closing, let plan) = try await world.engine.closeReview(id: campaign.id, actor: Self.operatorActor)
        else {
            Issue.record("five revocations are more than maxRevocationsPerRun 2")
            return
        }
        #expect(closing.status == .closing)
        #expect(closing.heldPlan == plan.id)
        #expect(plan.scope == .campaign(campaign.id))
        #expect(try await world.store.exceptions().isEmpty)
        #expect(try await world.grantLines().count { $0.hasPrefix("carol ") } == 2)
        // Reviewers can no longer change anything while it closes.
        guard case .refused = try await world.engine.decideReview(Self.link(campaign, "jdoe"), item: 1, verdict: .keep, note: nil)
        else {
            Issue.record("no decisions while the close is held")
            return
        }
        // The scheduler does not close it again at the due date.
        world.clock.advance(by: 15 * Self.day)
        #expect(try await world.engine.closeDueReviews().isEmpty)

        guard case .applied(let applied) = try await world.engine.approve(planID: plan.id, actor: Self.operatorActor) else {
            Issue.record("the operator approves the held close")
            return
        }
        #expect(applied.revocations == plan.revocations)
        let closed = try #require(try await world.store.reviewCampaign(id: campaign.id))
        #expect(closed.status == .closed && closed.heldPlan == nil)
        #expect(try await world.store.exceptions().count == 5)
        #expect(try await world.grantLines().filter { !$0.hasPrefix("agent:") }.isEmpty)
        #expect(try await world.store.plan(id: plan.id)?.status == .approved)
    }

    @Test func aCloseReportsItsItemsAsItGoesAndThenItsCommit() async throws {
        let world = try await Self.world()
        let (campaign, items) = try Self.started(try await world.engine.startReview(
            Self.request(ifNoAnswer: .revoke), usage: [:], actor: Self.operatorActor))
        let seen = Mutex<[ReviewCloseProgress]>([])
        _ = try await world.engine.closeReview(id: campaign.id, actor: Self.operatorActor) { event in
            seen.withLock { $0.append(event) }
        }
        let events = seen.withLock { $0 }
        #expect(events.dropLast() == (1...items.count).map { ReviewCloseProgress.closing(done: $0, of: items.count) })
        // Five revocations, five deny exceptions and three items.
        #expect(events.last == .committing(changes: 13))
    }

    @Test func theSchedulerClosesACampaignAtItsDueDateAndNotBefore() async throws {
        let world = try await Self.world()
        let (campaign, _) = try Self.started(try await world.engine.startReview(
            Self.request(due: 7 * Self.day, ifNoAnswer: .keep), usage: [:], actor: Self.operatorActor))
        world.clock.advance(by: 7 * Self.day - 1)
        #expect(try await world.engine.closeDueReviews().isEmpty)
        world.clock.advance(by: 1)
        let outcomes = try await world.engine.closeDueReviews()
        guard case .closed(let closed, let items, _)? = outcomes.first else {
            Issue.record("the due review closes")
            return
        }
        #expect(closed.id == campaign.id && closed.closedBy == "scheduler")
        #expect(items.allSatisfy { $0.outcome == .keptByDefault })
        #expect(try await world.store.exceptions().isEmpty)
    }
}
