import Synchronization
import TetherConfig
import TetherCore

/// What `POST /hooks/hr` verifies: the secrets in force and how far `t` may be from now.
public struct HRWebhookConfiguration: Sendable, CustomStringConvertible {
    /// Any of these verifies a signature.
    public var secrets: WebhookSecrets
    /// How far a signature's timestamp may be from now, either way.
    public var tolerance: Duration

    /// Creates the webhook's configuration; the tolerance defaults to SPEC §4's five minutes.
    public init(secrets: WebhookSecrets, tolerance: Duration = .seconds(300)) {
        self.secrets = secrets
        self.tolerance = tolerance
    }

    /// The `sources.hr` section with the secrets the daemon read from its `secretFiles`.
    public init(_ configuration: HRConfiguration, secrets: WebhookSecrets) {
        self.init(secrets: secrets, tolerance: configuration.tolerance)
    }

    /// Describes the configuration without the secrets.
    public var description: String { "HRWebhookConfiguration(\(secrets), tolerance: \(tolerance))" }
}

/// The credentials the public API checks, held so the daemon can swap them on a reload
/// without rebuilding its router. An endpoint without credentials answers 404: it is off.
public final class APIAccess: Sendable {
    private struct State {
        var hr: HRWebhookConfiguration?
        var checkTokens: BearerTokens?
    }

    private let state: Mutex<State>

    /// Creates the access rules; nil turns an endpoint off.
    public init(hr: HRWebhookConfiguration? = nil, checkTokens: BearerTokens? = nil) {
        state = Mutex(State(hr: hr, checkTokens: checkTokens))
    }

    /// The HR webhook's secrets and tolerance; nil when `sources.hr` is not configured.
    public var hr: HRWebhookConfiguration? { state.withLock { $0.hr } }

    /// The tokens `/v1/check` accepts; nil when `check.tokenFile` is not configured.
    public var checkTokens: BearerTokens? { state.withLock { $0.checkTokens } }

    /// The ``BearerTokens/generation`` of the tokens `/v1/check` accepts now; nil when none.
    public var checkTokensGeneration: UInt64? { state.withLock { $0.checkTokens?.generation } }

    /// Replaces both, as a reload does; requests already past authentication are unaffected.
    public func update(hr: HRWebhookConfiguration?, checkTokens: BearerTokens?) {
        state.withLock { $0 = State(hr: hr, checkTokens: checkTokens) }
    }
}
