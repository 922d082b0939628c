import Foundation
import Hummingbird
import Logging
import TetherConfig
import TetherCore
import TetherEngine
import TetherLDAP
import TetherStore
import TetherTargets

/// The operator API on the admin socket (HTTP over a Unix socket). Every change it makes is
/// audited with the actor `operator:<unix user of the peer>`.
struct AdminController: Sendable {
    let engine: Engine
    let store: any StateReading & AuditReading & OutboxQueue & UsageStore
    let state: DaemonState
    let reconciler: ReconcilerService
    let reloader: ConfigurationReloader
    /// This node's part among several on PostgreSQL; nil for one daemon on SQLite.
    let leadership: Leadership?
    let ingest: any EventIngest
    let resync: (any DirectoryResync)?
    /// Approves held drift plans of downstream targets; nil when none is configured.
    let drift: DriftChecker?
    /// The long work in progress, for `tether status`.
    let progress: WorkProgress
    /// Lets a held directory read go on (test hooks only).
    let readHold: ReadHold?
    let testHooks: Bool
    let logger: Logger

    func addRoutes(to router: Router<AdminContext>) {
        router.get("/v1/status") { _, _ in try await json(status()) }
        router.get("/v1/grants") { request, _ in
            let query = request.uri.queryParameters
            let grants = try await store.grants(subject: query.get("subject"), agent: query.get("agent"))
            return try await usedGrants(grants, unused: query.get("unused"))
        }
        router.get("/v1/identities") { request, _ in
            let status = try request.uri.queryParameters.get("status").map(Self.status)
            let precedence = await state.configuration.lifecycle.precedence
            return try json(try await store.identities(status: status).map { AdminModels.IdentityRow($0, precedence: precedence) })
        }
        router.post("/v1/identities/:user/reactivate") { _, context in
            let user = try context.parameters.require("user")
            let actor = try await context.operatorActor()
            do {
                let outcome = try await engine.reactivate(userName: user, actor: actor)
                return try json(AdminModels.Message(
                    status: outcome.status.rawValue, message: "\(user) \(outcome.transition?.rawValue ?? "unchanged")",
                    plan: outcome.plan.map { AdminModels.PlanRow($0) }))
            } catch let error as EngineError {
                return try json(AdminModels.ErrorBody(error: error.message), status: .notFound)
            }
        }
        addAgentRoutes(to: router)
        addReviewRoutes(to: router)
        router.get("/v1/exceptions") { _, _ in
            try json(try await store.exceptions().map(AdminModels.ExceptionRow.init))
        }
        router.post("/v1/exceptions") { request, context in
            let body = try await request.body.collect(upTo: 64 * 1024)
            let asked: ExceptionRequest
            do {
                asked = try Self.exceptionRequest(JSONDecoder().decode(AdminModels.ExceptionBody.self, from: Data(buffer: body)))
            } catch let error as AdminRequestError {
                return try json(AdminModels.ErrorBody(error: error.message), status: .badRequest)
            } catch {
                return try json(
                    AdminModels.ErrorBody(error: "expected {\"effect\",\"subject\",\"agent\",\"scope\",\"resource\",\"reason\",\"until\"?}"),
                    status: .badRequest)
            }
            return try await exceptionResult(try await engine.addException(asked, actor: try await context.operatorActor()))
        }
        router.delete("/v1/exceptions/:id") { _, context in
            let id = try context.parameters.require("id")
            return try await exceptionResult(try await engine.removeException(id: id, actor: try await context.operatorActor()))
        }
        router.get("/v1/plan") { _, _ in
            let outcome = try await engine.reconcile(origin: .other, actor: .policy, dryRun: true)
            return try json(AdminModels.PlanRow(outcome.plan))
        }
        router.get("/v1/plans") { _, _ in
            try json(try await store.plans(status: .held).map { AdminModels.PlanRow($0.plan, status: $0.status.rawValue) })
        }
        router.post("/v1/plans/:id/approve") { _, context in
            try await resolve(context, approve: true)
        }
        router.post("/v1/plans/:id/reject") { _, context in
            try await resolve(context, approve: false)
        }
        router.post("/v1/explain") { request, context in
            let body = try await request.body.collect(upTo: 64 * 1024)
            guard let check = try? JSONDecoder().decode(CheckRequest.self, from: Data(buffer: body)) else {
                return try json(AdminModels.ErrorBody(error: "expected {\"subject\",\"agent\",\"scope\",\"resource\"}"), status: .badRequest)
            }
            return try json(try await explain(check))
        }
        router.post("/v1/resync") { request, context in
            let query = request.uri.queryParameters
            let actor = try await context.operatorActor()
            let result = try await runResync(
                full: query.get("full") == "true", source: query.get("source"), dryRun: query.get("dryRun") == "true", actor: actor)
            return try json(result.0, status: result.1)
        }
        router.post("/v1/reload") { _, context in
            let actor = try await context.operatorActor()
            switch await reloader.reload(actor: actor) {
            case .success(let summary):
                return try json(AdminModels.Message(status: "reloaded", message: summary))
            case .failure(let error):
                return try json(AdminModels.ErrorBody(error: "configuration rejected; the running configuration is kept", detail: error.description), status: .unprocessableContent)
            }
        }
        router.post("/v1/ingest") { request, context in
            let body = try await request.body.collect(upTo: 64 * 1024 * 1024)
            let actor = try await context.operatorActor()
            return try json(await ingest.ingest(lines: String(buffer: body), actor: actor))
        }
        if testHooks {
            // Holds complete directory reads after a page of people, and lets them go on.
            router.post("/v1/debug/hold-read") { request, _ in
                guard let page = request.uri.queryParameters.get("page").flatMap({ Int($0) }) else {
                    throw HTTPError(.badRequest, message: "expected ?page=N")
                }
                readHold?.arm(page: page)
                return try json(AdminModels.Message(status: "ok"))
            }
            router.post("/v1/debug/release-read") { _, _ in
                readHold?.release()
                return try json(AdminModels.Message(status: "ok"))
            }
            router.post("/v1/debug/wedge") { request, _ in
                reconciler.setWedged(request.uri.queryParameters.get("on") != "false")
                return try json(AdminModels.Message(status: "ok"))
            }
            // Opens a write transaction and keeps it open (PostgreSQL): a leader frozen mid-write.
            router.post("/v1/debug/hold-write") { request, _ in
                guard let postgres = store as? PostgresStateStore else { throw HTTPError(.notImplemented) }
                let seconds = request.uri.queryParameters.get("seconds").flatMap { Int($0) } ?? 30
                postgres.holdWriteOpen(for: .seconds(seconds))
                return try json(AdminModels.Message(status: "ok"))
            }
            // Fills the store's "disk": every write that needs a new page fails as SQLITE_FULL.
            router.post("/v1/debug/store-full") { request, _ in
                guard let sqlite = store as? SQLiteStateStore else { throw HTTPError(.notImplemented) }
                try await sqlite.capSize(extraPages: request.uri.queryParameters.get("on") == "false" ? nil : 0)
                return try json(AdminModels.Message(status: "ok"))
            }
        }
    }

    // MARK: Operations

    func status() async throws -> AdminModels.Status {
        let configuration = await state.configuration
        var sources: [String: AdminModels.SourceRow] = [:]
        let stored = try await store.sourceStates()
        let configured: [(Source, String?)] = [
            (.ldap, configuration.sources.ldap.map { $0.changeDetection.rawValue }),
            (.scim, configuration.sources.scim.map { _ in "push" }),
            (.hr, configuration.sources.hr.map { _ in "push" }),
        ]
        for (source, mode) in configured {
            let known = stored[source]
            sources[source.rawValue] = AdminModels.SourceRow(
                state: mode == nil ? "disabled" : known?.health.rawValue ?? "ok",
                mode: known?.mode ?? mode, lastSuccess: known?.lastSuccess.map(Timestamp.string),
                lastError: known?.lastError, lastScanUsers: known?.lastScanUsers,
                unreadableEntries: known?.unreadableEntries)
        }
        let counts = try await store.identityCounts()
        var targets: [String: AdminModels.TargetRow] = [:]
        let now = Date()
        for target in configuration.targets {
            let backlog = try await store.outboxBacklog(target: target.id)
            targets[target.id] = AdminModels.TargetRow(
                pending: backlog.pending, oldestSeconds: backlog.oldestCreatedAt.map { max(0, now.timeIntervalSince($0)) } ?? 0,
                lastError: backlog.lastError)
        }
        let notReady = await state.notReadyReasons()
        let held = try await store.plans(status: .held)
        var windows: [String: AdminModels.WindowRow] = [:]
        for (source, window) in try await engine.safetyWindows(at: now) where window.revocations > 0 || window.held != nil {
            windows[source.rawValue] = AdminModels.WindowRow(
                revocations: window.revocations, window: DurationText.string(configuration.safety.window),
                heldPlan: window.held?.id, heldRevocations: window.held?.revocations)
        }
        return AdminModels.Status(
            ready: notReady.isEmpty, notReady: notReady, sources: sources, grants: try await store.grantCount(),
            identities: Dictionary(uniqueKeysWithValues: counts.map { ($0.key.rawValue, $0.value) }),
            heldPlans: held.map { AdminModels.PlanRow($0.plan, status: "held") },
            targets: targets,
            directoryLag: try await store.directoryLags().map {
                AdminModels.LagRow(userName: $0.userName, source: $0.source.rawValue, status: $0.status.rawValue, statusSource: $0.statusSource.rawValue)
            },
            policySet: configuration.policySet.hash, lastConfigError: await state.lastConfigError,
            safetyWindows: windows.isEmpty ? nil : windows, progress: progress.current.isEmpty ? nil : progress.current.map { AdminModels.ProgressRow($0, at: now) },
            agentsAtOneSponsor: try await agentsAtOneSponsor(), ha: leadership.map { AdminModels.HARow($0.current, lag: $0.lag(at: now)) })
    }

    /// The answer to adding or removing an exception.
    func exceptionResult(_ outcome: ExceptionOutcome) async throws -> Response {
        switch outcome {
        case .applied(let exception, let plan):
            return try json(AdminModels.ExceptionResult(
                status: "applied", exception: AdminModels.ExceptionRow(exception), plan: AdminModels.PlanRow(plan)))
        case .refused(let reason):
            return try json(AdminModels.ErrorBody(error: reason), status: .badRequest)
        case .notFound:
            return try json(AdminModels.ErrorBody(error: "no exception has that id; `tether exceptions` lists them"), status: .notFound)
        }
    }

    /// An exception request from its wire form: `until` is an RFC 3339 time or a duration
    /// from now (`7d`, `12h`).
    static func exceptionRequest(_ body: AdminModels.ExceptionBody) throws -> ExceptionRequest {
        guard let effect = AccessException.Effect(rawValue: body.effect) else {
            throw AdminRequestError(message: "effect must be grant or deny; got \(body.effect)")
        }
        let until = try body.until.map { try end($0, option: "--until") }
        return ExceptionRequest(
            effect: effect, subject: body.subject, agent: body.agent, scope: body.scope, resource: body.resource,
            until: until, reason: body.reason)
    }

    /// A time written as an RFC 3339 time or as a duration from now, for `option`.
    static func end(_ text: String, option: String) throws -> ExceptionRequest.End {
        if let date = Timestamp.parse(text) { return .at(date) }
        if let duration = ConfigurationDuration.parse(text) {
            let (seconds, attoseconds) = duration.components
            return .after(Double(seconds) + Double(attoseconds) / 1e18)
        }
        throw AdminRequestError(
            message: "\(option) \(text): expected an RFC 3339 time (2026-12-31T00:00:00Z) or a duration from now (12h, 7d)")
    }

    func explain(_ request: CheckRequest) async throws -> AdminModels.ExplainResult {
        let explanation = try await engine.explain(request)
        let lineage = explanation.grant?.justified.lineage
        let precedence = await state.configuration.lifecycle.precedence
        return AdminModels.ExplainResult(
            allowed: explanation.decision.allowed, reason: explanation.decision.reason, grant: explanation.grant?.id,
            policy: lineage?.policy, policySet: lineage?.policySet, facts: lineage?.facts, versions: lineage?.versions,
            events: lineage?.events, grantedAt: explanation.grant.map { Timestamp.string($0.grantedAt) },
            auditSeq: explanation.grant?.auditSeq,
            identity: explanation.identity.map { AdminModels.IdentityRow($0, precedence: precedence) },
            agentStatus: explanation.agentState.map { $0.quarantined ? "quarantined" : "active" },
            audit: explanation.audit.map(\.line), exception: explanation.exception.map(AdminModels.ExceptionRow.init))
    }

    func runResync(full: Bool, source: String?, dryRun: Bool, actor: Actor) async throws -> (AdminModels.ResyncResult, HTTPResponse.Status) {
        if let source, Source(rawValue: source) != .ldap {
            throw HTTPError(.badRequest, message: "only the ldap source can be resynced; got \(source)")
        }
        if dryRun {
            let outcome = try await engine.reconcile(origin: .other, actor: actor, dryRun: true)
            return (AdminModels.ResyncResult(outcome: "planned", plan: AdminModels.PlanRow(outcome.plan)), .ok)
        }
        try await engine.recordResyncRequest(actor: actor, detail: "full=\(full) source=\(source ?? "all")")
        var outcome: ReconcileOutcome?
        if let resync, source == nil || source == "ldap" {
            outcome = try await resync.resync(full: full || source == "ldap")
        }
        if outcome == nil || outcome?.plan.held == nil {
            // A full reconciliation like the timer's, the targets' drift check included.
            outcome = try await reconciler.reconcileAll(reason: "resync", actor: actor)
        }
        let final = outcome!
        switch final {
        case .held(let plan):
            return (AdminModels.ResyncResult(outcome: "held", plan: AdminModels.PlanRow(plan)), .accepted)
        case .applied(let plan), .planned(let plan):
            return (AdminModels.ResyncResult(outcome: "applied", plan: AdminModels.PlanRow(plan)), .ok)
        }
    }

    func resolve(_ context: AdminContext, approve: Bool) async throws -> Response {
        let id = try context.parameters.require("id")
        let actor = try await context.operatorActor()
        let outcome: ApprovalOutcome
        if approve, case .target(let target)? = try await store.plan(id: id)?.plan.scope {
            // A target's drift is approved against a fresh read of that target.
            guard let drift, drift.targetIDs.contains(target) else {
                return try json(
                    AdminModels.ErrorBody(error: "plan \(id) is for target \(target), which is not configured"), status: .conflict)
            }
            do {
                outcome = try await drift.approve(planID: id, target: target, actor: actor)
            } catch let error as TargetError {
                return try json(
                    AdminModels.ErrorBody(error: "target \(target) cannot be read; nothing applied", detail: error.description),
                    status: .serviceUnavailable)
            }
        } else {
            outcome = approve ? try await engine.approve(planID: id, actor: actor) : try await engine.reject(planID: id, actor: actor)
        }
        switch outcome {
        case .applied(let plan):
            return try json(AdminModels.Message(status: approve ? "approved" : "rejected", plan: AdminModels.PlanRow(plan)))
        case .stale(let fresh):
            return try json(
                AdminModels.ErrorBody(error: "plan is stale", detail: "a fresh computation gives \(fresh.id); review it with `tether plan`"),
                status: .conflict)
        case .notFound:
            return try json(AdminModels.ErrorBody(error: "no plan \(id)"), status: .notFound)
        case .notHeld(let status):
            // "rejected by policy (superseded)": a later computation for its scope replaced it.
            let by = try await store.plan(id: id)?.resolvedBy.map { " by \($0)" } ?? ""
            return try json(AdminModels.ErrorBody(error: "plan \(id) is not held: it was \(status.rawValue)\(by)"), status: .conflict)
        case .identitiesChanged(let users):
            let named = users.prefix(10).joined(separator: ", ") + (users.count > 10 ? " and \(users.count - 10) more" : "")
            return try json(
                AdminModels.ErrorBody(
                    error: "plan is stale",
                    detail: "people changed since the plan was held (\(named)); the next directory read gives a fresh plan"),
                status: .conflict)
        }
    }

    static func status(_ text: String) throws -> IdentityStatus {
        guard let status = IdentityStatus(rawValue: text) else {
            throw HTTPError(.badRequest, message: "unknown status \(text); expected active, suspended or terminated")
        }
        return status
    }
}

/// Feeds JSON-lines lifecycle events (SPEC §8 shape) to the engine, line by line.
public protocol EventIngest: Sendable {
    func ingest(lines: String, actor: Actor) async -> [AdminModels.IngestLine]
}

/// A source that can be asked to read everything again now (`tether resync`).
public protocol DirectoryResync: Sendable {
    /// Reads the directory again and applies it; returns the reconciliation it ran, if any.
    func resync(full: Bool) async throws -> ReconcileOutcome?
}

/// A JSON response with sorted keys, so `--json` output is stable.
func json<Value: Encodable>(_ value: Value, status: HTTPResponse.Status = .ok) throws -> Response {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    let data = try encoder.encode(value)
    return Response(
        status: status, headers: [.contentType: "application/json"],
        body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
}

extension LDAPSourceService: DirectoryResync {
    public func resync(full: Bool) async throws -> ReconcileOutcome? {
        try await resync()
    }
}

/// A request to the admin socket that cannot be read as asked, with what is wrong.
struct AdminRequestError: Error {
    let message: String
}
