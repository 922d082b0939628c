import Foundation
import HTTPTypes
import Hummingbird
import TetherCore
import TetherEngine

/// The reviewer's page (SPEC §18): `GET /review/{token}` lists the items the link's reviewer
/// answers for; `POST /review/{token}` records one decision and sends the browser back to the
/// page (post/redirect/get).
///
/// The token in the path is the reviewer's credential: it is never logged, the page tells the
/// browser not to send it on as a referrer nor to cache the page, and any refusal is a 403
/// that says no more than it must. Forms carry a token bound to a random nonce in a
/// `SameSite=Strict` cookie, so a form another site posts is refused.
public struct ReviewPageController<Context: RequestContext>: Sendable {
    let engine: Engine
    let maxBodyBytes: Int
    /// Whether the cookie is marked `Secure`: reviewers reach the daemon over HTTPS.
    let secureCookies: Bool

    /// The nonce cookie's name.
    static var nonceCookie: String { "tether_review" }

    public init(engine: Engine, maxBodyBytes: Int, secureCookies: Bool) {
        self.engine = engine
        self.maxBodyBytes = maxBodyBytes
        self.secureCookies = secureCookies
    }

    public func addRoutes(to group: RouterGroup<Context>) {
        group.get("/review/:token", use: page)
        group.post("/review/:token", use: decide)
    }

    @Sendable func page(_ request: Request, context: Context) async throws -> Response {
        let token = context.parameters.get("token") ?? ""
        let access = try await engine.reviewAccess(token: token)
        guard case .granted(let campaign, let link) = access else { return Self.refusal(access) }
        var nonce = request.cookies[Self.nonceCookie]?.value ?? ""
        let fresh = !Self.isNonce(nonce)
        if fresh { nonce = Self.newNonce() }
        let notice = request.uri.queryParameters.get("saved").flatMap(Int.init).map { "Your decision on item \($0) is saved." }
        var response = try await render(campaign: campaign, link: link, token: token, nonce: nonce, notice: notice, error: nil)
        if fresh {
            response.setCookie(Cookie(
                name: Self.nonceCookie, value: nonce, path: "/review", secure: secureCookies, httpOnly: true, sameSite: .strict))
        }
        return response
    }

    @Sendable func decide(_ request: Request, context: Context) async throws -> Response {
        let token = context.parameters.get("token") ?? ""
        let access = try await engine.reviewAccess(token: token)
        guard case .granted(let campaign, let link) = access else { return Self.refusal(access) }
        let body = try await request.body.collect(upTo: maxBodyBytes)
        // A body that is not a form (bad encoding, a field given twice) carries no form token.
        let form = (try? URLEncodedFormDecoder().decode(DecisionForm.self, from: String(buffer: body))) ?? DecisionForm()
        let nonce = request.cookies[Self.nonceCookie]?.value ?? ""
        guard let presented = form.csrf, link.acceptsFormToken(presented, nonce: nonce, key: campaign.linkKey) else {
            return Self.page(
                status: .forbidden, title: "This form has expired",
                message: "The form was not sent from this review's page, or its session ended. Open your review link again and resubmit.")
        }
        guard let number = form.item.flatMap(Int.init), let verdict = form.decision.flatMap(ReviewVerdict.init) else {
            return try await render(
                campaign: campaign, link: link, token: token, nonce: nonce, notice: nil,
                error: "Choose keep or revoke before saving.", status: .badRequest)
        }
        switch try await engine.decideReview(link, item: number, verdict: verdict, note: form.note) {
        case .decided:
            var response = Response(status: .seeOther)
            response.headers[.location] = "/review/\(token)?saved=\(number)#item-\(number)"
            Self.protect(&response.headers)
            return response
        case .forbidden:
            return Self.page(status: .forbidden, title: "Not your item", message: "This link does not let you decide that item.")
        case .notFound:
            return Self.page(status: .notFound, title: "No such item", message: "This review has no item \(number).")
        case .refused(let reason):
            return try await render(
                campaign: campaign, link: link, token: token, nonce: nonce, notice: nil, error: reason.capitalizedFirst + ".",
                status: .conflict)
        case .started, .closed, .held:
            return Self.page(status: .internalServerError, title: "Unexpected answer", message: "Try again.")
        }
    }

    /// The page of `link`'s reviewer.
    private func render(
        campaign: ReviewCampaign, link: ReviewLink, token: String, nonce: String, notice: String?, error: String?,
        status: HTTPResponse.Status = .ok
    ) async throws -> Response {
        let items = try await engine.reviewerItems(link)
        let reviewer = try await engine.reads.identity(userName: link.reviewer)
        let page = ReviewerPage(
            campaign: campaign, reviewer: link.reviewer, reviewerName: reviewer?.displayName, items: items,
            action: "/review/\(token)", csrf: link.formToken(nonce: nonce, key: campaign.linkKey), notice: notice, error: error)
        return Self.html(ReviewTemplates.render("reviewer", page), status: status)
    }

    /// The 403 for a link that does not open the page: what is wrong, and nothing of the token.
    static func refusal(_ access: ReviewAccess) -> Response {
        switch access {
        case .refused(.expired):
            return Self.page(
                status: .forbidden, title: "This link has expired", message: "Review links stop working at the review's due date.")
        case .refused(.closed(let campaign)):
            return Self.page(
                status: .forbidden, title: "This review is closed",
                message: "The review \(campaign.name) has closed; decisions can no longer change.")
        case .refused(.unknown), .granted:
            return Self.page(
                status: .forbidden, title: "This link cannot be used",
                message: "The link is not valid. Use the link exactly as you received it, or ask the review's owner for a new one.")
        }
    }

    static func page(status: HTTPResponse.Status, title: String, message: String) -> Response {
        html(ReviewTemplates.render("refusal", ["pageTitle": title, "title": title, "message": message]), status: status)
    }

    static func html(_ text: String, status: HTTPResponse.Status) -> Response {
        var headers: HTTPFields = [.contentType: "text/html; charset=utf-8"]
        protect(&headers)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// Headers that keep the page and its token where they belong: no caching, no referrer,
    /// no framing, no script.
    static func protect(_ headers: inout HTTPFields) {
        headers[.cacheControl] = "no-store"
        headers[HTTPField.Name("Referrer-Policy")!] = "no-referrer"
        headers[HTTPField.Name("X-Frame-Options")!] = "DENY"
        headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        headers[.contentSecurityPolicy] =
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    }

    /// What a decision's form posts; every field may be missing.
    struct DecisionForm: Decodable {
        var csrf: String?
        var item: String?
        var decision: String?
        var note: String?
    }

    /// 128 random bits in hex.
    static func newNonce() -> String {
        var generator = SystemRandomNumberGenerator()
        return Hex.encode(prefix: "", high: generator.next(), low: generator.next())
    }

    /// Whether a cookie's value has the shape of a nonce this controller made.
    static func isNonce(_ text: String) -> Bool {
        text.utf8.count == 32 && text.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }
    }
}

extension String {
    /// The text with its first letter in capitals: a refusal's reason as a sentence.
    var capitalizedFirst: String { prefix(1).uppercased() + dropFirst() }
}
