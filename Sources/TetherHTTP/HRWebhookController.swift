import Foundation
import Hummingbird
import Logging
import Metrics
import TetherCore
import TetherEngine
import TetherStore

/// `POST /hooks/hr`: signed HR joiner, mover and leaver events (SPEC §8).
///
/// The signature header and its time are checked before the body is read, the signature
/// itself before the body is parsed as JSON; the event is handed to the
/// engine, which records and applies it in one commit before the answer is sent. Nothing is
/// applied on any error.
public struct HRWebhookController<Context: RequestContext>: Sendable {
    let engine: Engine
    let access: APIAccess
    let clock: any WallClock
    let maxBodyBytes: Int
    let refusals: RefusalAuditBudget

    /// - Parameters:
    ///   - engine: applies the events.
    ///   - access: holds the secrets and tolerance; without them the endpoint answers 404.
    ///   - clock: the time `t` is checked against, and a joiner's effective time.
    ///   - maxBodyBytes: larger bodies are refused with 413 (`http.maxBodyBytes`).
    ///   - refusals: how many requests that fail verification are audited one by one.
    public init(
        engine: Engine, access: APIAccess, clock: any WallClock = SystemWallClock(), maxBodyBytes: Int,
        refusals: RefusalAuditBudget = RefusalAuditBudget()
    ) {
        self.engine = engine
        self.access = access
        self.clock = clock
        self.maxBodyBytes = maxBodyBytes
        self.refusals = refusals
    }

    /// Adds `POST /hooks/hr` to `group`.
    public func addRoutes(to group: RouterGroup<Context>) {
        group.post("/hooks/hr", use: receive)
    }

    /// Verifies, parses and submits one event, and answers with what became of it.
    @Sendable func receive(_ request: Request, context: Context) async throws -> Response {
        let started = ContinuousClock.now
        do throws(APIError) {
            let response = try await handle(request, context: context)
            Metrics.Timer(label: "tether_hr_event_duration_seconds").recordInterval(since: started)
            return response
        } catch {
            Counter(label: "tether_hr_events_total", dimensions: [("status", Self.metricStatus(error.code))]).increment()
            if error.code == .unavailable || error.code == .internal {
                context.logger.error(
                    "HR event not applied", metadata: ["error": "\(error.underlying.map { "\($0)" } ?? error.detail)"])
            }
            throw error
        }
    }

    private func handle(_ request: Request, context: Context) async throws(APIError) -> Response {
        guard let hr = access.hr else { throw APIError(.notFound, "the HR webhook is not configured (sources.hr)") }
        let now = clock.now()
        // The header and its time first: a request that cannot be signed right is refused
        // before its body (up to http.maxBodyBytes) is read.
        let presented: WebhookSignature.Presented
        do throws(WebhookSignature.Failure) {
            presented = try WebhookSignature.Presented(
                header: request.headers[WebhookSignature.headerName], now: now, tolerance: hr.tolerance)
        } catch {
            throw await refuse(error, at: now, context: context)
        }
        let body = Data(try await JSONBody.collect(request, limit: maxBodyBytes).readableBytesView)
        do throws(WebhookSignature.Failure) {
            try presented.verify(body: body, secrets: hr.secrets)
        } catch {
            throw await refuse(error, at: now, context: context)
        }

        let event: LifecycleEvent
        do throws(APIError) {
            event = try HREvent(json: body, now: now, tolerance: hr.tolerance).event
        } catch {
            // Signed, so the sender is known: record what it sent wrong, and under which id if it has one.
            let id = (try? JSONDecoder().decode(EventID.self, from: body))?.id
            await reject("malformed event: \(error.description)", event: id, context: context)
            throw error
        }

        let outcome: EventOutcome
        do {
            outcome = try await engine.submit(event, actor: .hr)
        } catch let error as StoreError {
            throw APIError(.unavailable, "the store could not record the event; nothing was applied, retry later", underlying: error)
        } catch let error as EngineError where error.code == .invalidEvent {
            throw APIError(.malformed, error.message, underlying: error)
        } catch let error as EngineError where error.code == .futureVersion {
            await reject(error.message, event: event.id, context: context)
            throw APIError(.malformed, error.message, path: "$.occurredAt", underlying: error)
        } catch let error as EngineError where error.code == .conflictingEvent {
            await reject(error.message, event: event.id, context: context)
            throw APIError(.conflict, error.message, path: "$.id", underlying: error)
        } catch {
            throw APIError(.internal, "the event could not be applied; nothing was applied", underlying: error)
        }

        Counter(label: "tether_hr_events_total", dimensions: [("status", outcome.status.rawValue)]).increment()
        context.logger.info(
            "HR event received",
            metadata: [
                "event.id": "\(event.id)", "event.type": "\(event.kind.rawValue)", "event.status": "\(outcome.status.rawValue)",
                "identity.id": "\(outcome.identity ?? "-")", "grants.revoked": "\(outcome.revoked)",
            ])
        return Self.answer(outcome, kind: event.kind, revision: engine.index.revision)
    }

    /// The answer to a request whose signature failed. Unauthenticated, so audited within a
    /// budget: a stranger cannot make the store write at will.
    private func refuse(_ failure: WebhookSignature.Failure, at now: Date, context: Context) async -> APIError {
        switch refusals.admit(at: now) {
        case .audit(let unaudited, let since):
            var reason = failure.description
            if unaudited > 0, let since {
                reason += "; \(unaudited) earlier refusals since \(Timestamp.string(since)) were not audited one by one"
            }
            await reject(reason, event: nil, context: context)
        case .skip:
            context.logger.notice("HR event rejected", metadata: ["reason": "\(failure.description)", "audited": "no"])
        }
        return APIError(.unauthorized, failure.description)
    }

    /// Audits a refused request as `event.rejected`. A failure to audit is logged, not
    /// answered: the sender's fault stays the answer.
    private func reject(_ reason: String, event: String?, context: Context) async {
        context.logger.notice("HR event rejected", metadata: ["reason": "\(reason)"])
        do {
            try await engine.recordRejectedEvent(source: .hr, reason: reason, event: event)
        } catch {
            context.logger.error("rejected HR event not audited", metadata: ["error": "\(error)"])
        }
    }

    /// SPEC §8's answers. A plan the safety gates held is accepted but waits for an operator.
    /// Each carries the revision the check index reached with it (SPEC §14): a check that asks
    /// for at least that revision, of any node, sees what the event changed.
    static func answer(_ outcome: EventOutcome, kind: EventKind, revision: Int) -> Response {
        var response =
            switch outcome.status {
            case .applied where kind == .leaver:
                JSONValue.response(
                    .ok, [("status", .string("applied")), ("revoked", .int(outcome.revoked)), ("revision", .int(revision))])
            case .applied, .duplicate, .stale:
                JSONValue.response(.ok, [("status", .string(outcome.status.rawValue)), ("revision", .int(revision))])
            case .scheduled:
                JSONValue.response(.accepted, [("status", .string("scheduled")), ("revision", .int(revision))])
            case .held:
                JSONValue.response(
                    .accepted, [("status", .string("held")), ("plan", .string(outcome.plan?.id ?? "")), ("revision", .int(revision))])
            }
        response.headers[.tetherRevision] = String(revision)
        return response
    }

    private struct EventID: Decodable {
        var id: String
    }

    static func metricStatus(_ code: APIError.Code) -> String {
        switch code {
        case .malformed: "malformed"
        case .unauthorized: "rejected"
        case .notFound: "not_found"
        case .conflict: "conflict"
        case .tooLarge: "too_large"
        case .unavailable, .behind, .noLeader: "unavailable"
        case .internal: "failed"
        }
    }
}

extension Metrics.Timer {
    /// Records the time elapsed since `start`.
    func recordInterval(since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        let (seconds, attoseconds) = elapsed.components
        recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
