import Foundation

/// `reviews`: access reviews (SPEC §18).
public struct ReviewsConfiguration: Sendable, Hashable {
    /// The id `reviews.notify` goes by in logs and metrics.
    public static let notifyTargetID = "reviews.notify"

    /// How long a grant goes without an allowed check before a review recommends removing it
    /// (`reviews.unusedAfter`, 30 days by default).
    public var unusedAfter: Duration
    /// The address reviewers reach this daemon's HTTP listener at, which links start with
    /// (`reviews.publicURL`, e.g. `https://tether.example.com`); by default `http://` and
    /// `http.listen`.
    public var publicURL: String?
    /// Where a new campaign's links are POSTed as JSON, for e-mail or chat to hand out.
    public var notify: TargetConfiguration?

    public init(unusedAfter: Duration = .seconds(30 * 86_400), publicURL: String? = nil, notify: TargetConfiguration? = nil) {
        self.unusedAfter = unusedAfter
        self.publicURL = publicURL
        self.notify = notify
    }
}

extension ConfigurationReader {
    func readReviews(_ node: ConfigNode) -> ReviewsConfiguration {
        var reviews = ReviewsConfiguration()
        guard let map = node.mapping(allowed: ["unusedAfter", "publicURL", "notify"]) else { return reviews }
        if let duration = map.optional("unusedAfter")?.duration() { reviews.unusedAfter = duration }
        if let urlNode = map.optional("publicURL"), let text = urlNode.nonEmptyString("an http:// or https:// URL") {
            if Self.isHTTPURL(text) {
                reviews.publicURL = text.hasSuffix("/") ? String(text.dropLast()) : text
            } else {
                urlNode.error(
                    "invalid URL '\(text)'; expected the http:// or https:// address reviewers open, e.g. https://tether.example.com")
            }
        }
        if let notifyNode = map.optional("notify") {
            reviews.notify = readPostTarget(
                notifyNode, id: ReviewsConfiguration.notifyTargetID,
                hint: "where review links are POSTed, e.g. https://notify.example.com/tether-reviews")
        }
        return reviews
    }

    /// A target Tether POSTs JSON to (`url`, `secretFile`, `timeout`, `maxBackoff`), or nil
    /// with the errors logged.
    func readPostTarget(_ node: ConfigNode, id: String, hint: String) -> TargetConfiguration? {
        guard let target = node.mapping(allowed: ["url", "secretFile", "timeout", "maxBackoff"]) else { return nil }
        var url: String?
        if let urlNode = target.required("url", hint: hint), let text = urlNode.nonEmptyString("an http:// or https:// URL") {
            if Self.isHTTPURL(text) {
                url = text
            } else {
                urlNode.error("invalid URL '\(text)'; expected an http:// or https:// URL with a host")
            }
        }
        let secretFile = target.required("secretFile", hint: "the HMAC secret that signs requests to \(id)").flatMap(resolvedPath)
        let timeout = target.optional("timeout")?.duration()
        let maxBackoff = target.optional("maxBackoff")?.duration()
        guard let url, let secretFile else { return nil }
        return TargetConfiguration(id: id, url: url, secretFile: secretFile, timeout: timeout, maxBackoff: maxBackoff)
    }
}
