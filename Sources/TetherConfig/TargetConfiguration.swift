/// The kinds of grant targets Tether can push changes to.
public enum TargetType: String, Sendable, Hashable, CaseIterable {
    /// `PUT`/`DELETE {url}/{grantId}` and `GET {url}` (SPEC §6).
    case http
}

/// What to do with grants a target holds that no policy explains.
public enum OrphanPolicy: String, Sendable, Hashable, CaseIterable {
    /// Revoke them on the target.
    case revoke
    /// Only report them (status, plan, audit); leave them in place.
    case report
}

/// `targets[]`: an external system that enforces grants, fed through the durable outbox.
public struct TargetConfiguration: Sendable, Hashable {
    /// Unique among targets; names the target in status, metrics and the outbox.
    public var id: String
    /// The protocol spoken to the target.
    public var type: TargetType
    /// Base URL of the target's grant collection, `http://` or `https://`.
    public var url: String
    /// Absolute path of the HMAC secret used for `Tether-Signature`.
    public var secretFile: String
    /// Grants on the target that no policy explains: revoked or only reported (default `report`).
    public var orphans: OrphanPolicy
    /// Per-request timeout; nil leaves the daemon's default.
    public var timeout: Duration?
    /// The longest wait between retries while the target fails; nil leaves the default (5 min).
    public var maxBackoff: Duration?
    /// Also send the `v1` signature, which covers the time and body but not the method, path or
    /// `Idempotency-Key`, for a target not yet verifying `v2` (default false).
    public var signatureV1: Bool

    /// Creates a target configuration.
    public init(
        id: String, type: TargetType = .http, url: String, secretFile: String,
        orphans: OrphanPolicy = .report, timeout: Duration? = nil, maxBackoff: Duration? = nil, signatureV1: Bool = false
    ) {
        self.id = id
        self.type = type
        self.url = url
        self.secretFile = secretFile
        self.orphans = orphans
        self.timeout = timeout
        self.maxBackoff = maxBackoff
        self.signatureV1 = signatureV1
    }
}
