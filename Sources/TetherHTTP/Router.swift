import Hummingbird
import TetherCore
import TetherEngine

/// A router with Tether's public API on it: JSON errors, `POST /hooks/hr` and `POST /v1/check`.
///
/// The daemon adds `/healthz`, `/readyz`, `/metrics` and SCIM to it before building its
/// application. Both endpoints are always routed; each answers 404 while ``APIAccess``
/// holds no credentials for it, so a reload can turn them on or off.
///
/// Metrics (swift-metrics; bootstrap the backend before calling this):
/// `tether_check_duration_seconds` (timer), `tether_checks_total{allowed}`,
/// `tether_hr_events_total{status}` (applied, held, scheduled, duplicate, stale, rejected,
/// malformed, too_large, unavailable, failed, not_found) and `tether_hr_event_duration_seconds`.
///
/// - Parameters:
///   - engine: applies HR events; its `index` answers checks.
///   - access: HR secrets and tolerance, check tokens.
///   - maxBodyBytes: `http.maxBodyBytes`; larger bodies get 413.
///   - clock: the time HR signatures are checked against.
///   - refusals: how many HR requests that fail verification are audited one by one.
///   - decisions: the decision log's queue, given every check answer; nil records none.
///   - forwarding: where a follower's writes go (SPEC §14); nil: this node takes them all.
///   - checkMaxWait: how long a check asking for a revision waits for it (`check.maxWait`).
///   - check: the check's answerer, when the caller also answers checks outside the router
///     (the daemon's connection handler); by default one made from the arguments above.
public func buildRouter<Context: RequestContext>(
    engine: Engine, access: APIAccess, maxBodyBytes: Int, clock: any WallClock = SystemWallClock(),
    refusals: RefusalAuditBudget = RefusalAuditBudget(), decisions: DecisionQueue? = nil,
    forwarding: (any WriteForwarding)? = nil, checkMaxWait: Duration = .milliseconds(100), check: CheckAnswerer? = nil,
    context: Context.Type = BasicRequestContext.self
) -> Router<Context> {
    let router = Router(context: Context.self)
    router.add(middleware: JSONErrorMiddleware())
    if let forwarding { router.add(middleware: WriteForwardingMiddleware(forwarding: forwarding, maxBodyBytes: maxBodyBytes)) }
    let group = router.group()
    HRWebhookController<Context>(
        engine: engine, access: access, clock: clock, maxBodyBytes: maxBodyBytes, refusals: refusals
    ).addRoutes(to: group)
    CheckController<Context>(
        answerer: check
            ?? CheckAnswerer(index: engine.index, access: access, maxBodyBytes: maxBodyBytes, decisions: decisions, maxWait: checkMaxWait)
    ).addRoutes(to: group)
    return router
}
