import Foundation
import Hummingbird
import TetherConfig
import TetherCore
import TetherEngine
import TetherHTTP
import TetherTargets

/// `tether reviews` over the admin socket (SPEC §18): start, list, show, close, the reviewers'
/// links and the report.
extension AdminController {
    func addReviewRoutes(to router: Router<AdminContext>) {
        router.get("/v1/reviews") { _, _ in
            var rows: [AdminModels.CampaignRow] = []
            for campaign in try await store.reviewCampaigns() {
                rows.append(AdminModels.CampaignRow(campaign, counts: try await store.reviewCounts(campaign: campaign.id)))
            }
            return try json(rows)
        }
        router.post("/v1/reviews") { request, context in
            let buffer = try await request.body.collect(upTo: 64 * 1024)
            let asked: ReviewRequest
            do {
                asked = try Self.reviewRequest(JSONDecoder().decode(AdminModels.ReviewBody.self, from: Data(buffer: buffer)))
            } catch let error as AdminRequestError {
                return try json(AdminModels.ErrorBody(error: error.message), status: .badRequest)
            } catch {
                return try json(
                    AdminModels.ErrorBody(error: "expected {\"name\",\"scope\",\"reviewer\",\"due\",\"ifNoAnswer\"}"), status: .badRequest)
            }
            let actor = try await context.operatorActor()
            let outcome = try await engine.startReview(asked, usage: try await lastUses().grants, actor: actor)
            guard case .started(let campaign, let items) = outcome else { return try reviewFailure(outcome) }
            let (links, notify) = try await links(of: campaign, items: items, notify: true)
            return try json(AdminModels.ReviewResult(
                status: "started", campaign: AdminModels.CampaignRow(campaign, items: items), links: links, notify: notify))
        }
        router.get("/v1/reviews/:id") { _, context in
            let id = try context.parameters.require("id")
            guard let campaign = try await store.reviewCampaign(id: id) else { return try Self.noCampaign() }
            let items = try await engine.standingReviewItems(campaign: id)
            return try json(AdminModels.CampaignDetail(
                campaign: AdminModels.CampaignRow(campaign, items: items), items: items.map(AdminModels.ReviewItemRow.init)))
        }
        router.post("/v1/reviews/:id/close") { _, context in
            let id = try context.parameters.require("id")
            let work = "review close"
            defer { progress.finish(work: work) }
            let outcome = try await engine.closeReview(
                id: id, actor: try await context.operatorActor(), progress: { [progress] in progress.observe($0, work: work) })
            switch outcome {
            case .closed(let campaign, let items, let plan):
                return try json(AdminModels.ReviewResult(
                    status: "closed", campaign: AdminModels.CampaignRow(campaign, items: items), plan: AdminModels.PlanRow(plan)))
            case .held(let campaign, let plan):
                return try json(AdminModels.ReviewResult(
                    status: "held", campaign: AdminModels.CampaignRow(campaign), plan: AdminModels.PlanRow(plan)), status: .accepted)
            default:
                return try reviewFailure(outcome)
            }
        }
        router.get("/v1/reviews/:id/links") { request, context in
            let id = try context.parameters.require("id")
            guard let campaign = try await store.reviewCampaign(id: id) else { return try Self.noCampaign() }
            guard campaign.status == .open else {
                return try json(
                    AdminModels.ErrorBody(error: "the review \(campaign.name) is \(campaign.status.rawValue); its links no longer work"),
                    status: .conflict)
            }
            let items = try await store.reviewItems(campaign: id)
            let (links, notify) = try await links(
                of: campaign, items: items, notify: request.uri.queryParameters.get("notify") == "true")
            return try json(AdminModels.ReviewResult(
                status: "links", campaign: AdminModels.CampaignRow(campaign, items: items), links: links, notify: notify))
        }
        router.get("/v1/reviews/:id/report") { request, context in
            let id = try context.parameters.require("id")
            let text = request.uri.queryParameters.get("format") ?? "json"
            guard let format = ReviewReport.Format(rawValue: text) else {
                return try json(AdminModels.ErrorBody(error: "--format \(text): expected html, json or csv"), status: .badRequest)
            }
            guard let report = try await engine.reviewReport(id: id) else { return try Self.noCampaign() }
            return Response(
                status: .ok, headers: [.contentType: format.contentType],
                body: ResponseBody(byteBuffer: ByteBuffer(string: report.rendered(format))))
        }
    }

    /// Each reviewer's link, and what `reviews.notify` made of them when asked to send them.
    private func links(
        of campaign: ReviewCampaign, items: [ReviewItem], notify: Bool
    ) async throws -> ([AdminModels.ReviewLinkRow], AdminModels.NotifyRow?) {
        let configuration = await state.configuration
        let base = configuration.reviews.publicURL ?? "http://\(configuration.http.listen)"
        var counts: [String: Int] = [:]
        for item in items where item.outcome == nil {
            for reviewer in item.reviewers { counts[reviewer, default: 0] += 1 }
        }
        var rows: [AdminModels.ReviewLinkRow] = []
        for (reviewer, count) in counts.sorted(by: { $0.key < $1.key }) {
            let person = try await store.identity(userName: reviewer)
            let token = ReviewLink(campaign: campaign.id, reviewer: reviewer, expires: campaign.due).token(key: campaign.linkKey)
            rows.append(AdminModels.ReviewLinkRow(
                reviewer: reviewer, displayName: person?.displayName, email: person?.email, items: count,
                url: "\(base)/review/\(token)"))
        }
        guard notify, let target = configuration.reviews.notify else { return (rows, nil) }
        let messages = rows.map {
            ReviewNotifier.Message(
                campaign: campaign.id, name: campaign.name, due: Timestamp.string(campaign.due), reviewer: $0.reviewer,
                displayName: $0.displayName, email: $0.email, items: $0.items, url: $0.url)
        }
        let failed: [(reviewer: String, reason: String)]
        do {
            failed = try await ReviewNotifier(configuration: target).send(messages)
        } catch {
            failed = messages.map { ($0.reviewer, "\(error)") }
        }
        for failure in failed {
            // The reason names the target's answer; the link itself is never logged.
            logger.warning(
                "a review link could not be sent to reviews.notify; `tether reviews links --notify` sends it again",
                metadata: ["campaign": "\(campaign.id)", "reviewer": "\(failure.reviewer)", "error": "\(failure.reason)"])
        }
        return (rows, AdminModels.NotifyRow(
            target: ReviewsConfiguration.notifyTargetID, sent: messages.count - failed.count,
            failed: Dictionary(failed.map { ($0.reviewer, $0.reason) }, uniquingKeysWith: { a, _ in a })))
    }

    /// The answer to a review outcome that did not do what was asked.
    private func reviewFailure(_ outcome: ReviewOutcome) throws -> Response {
        switch outcome {
        case .refused(let reason): try json(AdminModels.ErrorBody(error: reason), status: .conflict)
        case .notFound: try Self.noCampaign()
        default: try json(AdminModels.ErrorBody(error: "unexpected outcome"), status: .internalServerError)
        }
    }

    private static func noCampaign() throws -> Response {
        try json(AdminModels.ErrorBody(error: "no review has that id; `tether reviews` lists them"), status: .notFound)
    }

    /// A review request from its wire form.
    static func reviewRequest(_ body: AdminModels.ReviewBody) throws -> ReviewRequest {
        guard let scope = ReviewCampaign.Scope(body.scope) else {
            throw AdminRequestError(message: "--scope \(body.scope): expected all, agent:ID or policy:ID")
        }
        guard let reviewer = ReviewCampaign.ReviewerKind(rawValue: body.reviewer) else {
            throw AdminRequestError(message: "--reviewer \(body.reviewer): expected sponsor or manager")
        }
        guard let ifNoAnswer = ReviewVerdict(rawValue: body.ifNoAnswer) else {
            throw AdminRequestError(message: "--if-no-answer \(body.ifNoAnswer): expected keep or revoke")
        }
        return ReviewRequest(
            name: body.name, scope: scope, reviewer: reviewer, due: try end(body.due, option: "--due"), ifNoAnswer: ifNoAnswer)
    }
}
