import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import TetherCore
import TetherEngine

/// The reconcile loop: loads the check index, runs the first full reconciliation, then
/// applies scheduled leavers as they fall due and a full reconciliation on a timer. It beats
/// the heartbeat on every turn, which is what keeps the systemd watchdog fed.
public final class ReconcilerService: Service, Sendable {
    let engine: Engine
    let state: DaemonState
    let heartbeat: Heartbeat
    let logger: Logger
    let tick: Duration
    let fullInterval: Duration
    /// Runs after each full reconciliation: the drift check of downstream targets.
    let afterFullReconciliation: (@Sendable () async throws -> Void)?
    /// Shows a full reconciliation in `tether status`, `STATUS=` and `/metrics` while it runs.
    let progress: WorkProgress?
    private let wedged = Mutex(false)

    package init(
        engine: Engine, state: DaemonState, heartbeat: Heartbeat, logger: Logger, tick: Duration = .seconds(1), fullInterval: Duration,
        progress: WorkProgress? = nil, afterFullReconciliation: (@Sendable () async throws -> Void)? = nil
    ) {
        self.afterFullReconciliation = afterFullReconciliation
        self.progress = progress
        self.engine = engine
        self.state = state
        self.heartbeat = heartbeat
        self.logger = logger
        self.tick = tick
        self.fullInterval = fullInterval
    }

    public func run() async throws {
        try await reconcileAll(reason: "startup")
        await state.mark(.firstReconciliation)
        try await warnAboutUnknownGroups()
        var sinceFull: Duration = .zero
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            heartbeat.beat()
            try await gracefulShutdownAwareSleep(tick)
            if Task.isShuttingDownGracefully { break }
            while wedged.withLock({ $0 }) && !Task.isShuttingDownGracefully {
                // Test hook: a stuck loop stops beating, so the watchdog must stop pinging.
                try await gracefulShutdownAwareSleep(.milliseconds(50))
            }
            do {
                for outcome in try await engine.applyDueLeavers() {
                    logger.info("scheduled leaver applied", metadata: ["identity": "\(outcome.identity ?? "-")", "revoked": "\(outcome.revoked)"])
                }
                for exception in try await engine.expireDueExceptions() {
                    logger.info(
                        "exception reached its end and was removed",
                        metadata: [
                            "exception": "\(exception.id)", "effect": "\(exception.effect.rawValue)", "subject": "\(exception.subject)",
                            "agent": "\(exception.agent)",
                        ])
                }
                try await closeDueReviews()
                sinceFull += tick
                if sinceFull >= fullInterval {
                    sinceFull = .zero
                    try await reconcileAll(reason: "timer")
                }
            } catch {
                // A failed turn (store locked, disk full) is logged and retried next turn.
                logger.error("reconcile turn failed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Runs a full reconciliation, logs what it did, then checks the targets for drift.
    @discardableResult
    func reconcileAll(reason: String, actor: Actor = .policy) async throws -> ReconcileOutcome {
        progress?.begin("full reconciliation", phase: "reading the store")
        defer { progress?.finish(work: "full reconciliation") }
        let report: (@Sendable (ReconcileProgress) -> Void)? = if let progress { { progress.observe($0) } } else { nil }
        let outcome = try await engine.reconcile(origin: .other, actor: actor, progress: report)
        switch outcome {
        case .applied(let plan) where !plan.isEmpty:
            logger.info("full reconciliation applied", metadata: ["reason": "\(reason)", "plan": "\(plan.id)", "grants": "\(plan.grants)", "revocations": "\(plan.revocations)"])
        case .held(let plan):
            logger.warning("full reconciliation held", metadata: ["reason": "\(reason)", "plan": "\(plan.id)", "held": "\(plan.held ?? "")"])
        default:
            break
        }
        if let afterFullReconciliation {
            do {
                try await afterFullReconciliation()
            } catch {
                // Unknown is not absent: a target that cannot be read changes nothing.
                logger.warning("drift check failed", metadata: ["error": "\(error)"])
            }
        }
        return outcome
    }

    /// A policy naming a group no identity belongs to is a warning, not an error: the group
    /// may not exist yet. Checked once the store knows who is in which group.
    func warnAboutUnknownGroups() async throws {
        // Read inside SQLite: decoding a hundred thousand identities took seconds of a core at
        // start, while the first checks were being answered.
        let (activeCount, known) = try await engine.reads.activeGroups()
        guard activeCount > 0 else { return }
        for warning in await state.configuration.unknownGroupWarnings(knownGroups: known) {
            logger.warning("\(warning.description)")
        }
    }

    /// Stops (or restarts) the loop's heartbeat; only reachable with test hooks enabled.
    func setWedged(_ value: Bool) { wedged.withLock { $0 = value } }
}

extension ReconcilerService {
    /// Closes the reviews whose due date has come, with their progress in `tether status`.
    func closeDueReviews() async throws {
        let work = "review close"
        var report: (@Sendable (ReviewCloseProgress) -> Void)?
        if let progress { report = { progress.observe($0, work: work) } }
        defer { progress?.finish(work: work) }
        for outcome in try await engine.closeDueReviews(progress: report) {
            logClose(outcome)
        }
    }

    /// Says what closing a review at its due date did.
    func logClose(_ outcome: ReviewOutcome) {
        switch outcome {
        case .closed(let campaign, let items, let plan):
            logger.info(
                "access review reached its due date and closed; its revocations were applied",
                metadata: [
                    "campaign": "\(campaign.id)", "items": "\(items.count)", "revoked": "\(plan.revocations)",
                ])
        case .held(let campaign, let plan):
            logger.warning(
                "access review reached its due date; the safety gates held its revocations: approve or reject the plan",
                metadata: ["campaign": "\(campaign.id)", "plan": "\(plan.id)", "reason": "\(plan.held ?? "")"])
        default:
            break
        }
    }
}
