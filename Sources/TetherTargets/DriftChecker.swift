import Foundation
import Logging
import Metrics
import TetherConfig
import TetherCore
import TetherEngine
import TetherStore

/// Compares each target's actual grants (`GET {url}`) with the store after a full
/// reconciliation, and repairs the difference through the outbox: orphans revoked or only
/// reported, missing grants re-sent, all through the safety gates and with audit records that
/// name the target. A target that cannot be read in full is unknown, not empty: nothing is
/// revoked or re-sent because of it.
public final class DriftChecker: Sendable {
    /// A target as the drift check sees it: how to read it, and what to do with its orphans.
    public struct Target: Sendable {
        /// How the target is read.
        public var target: any GrantTarget
        /// Grants on the target that nothing in the store explains: revoked or only reported.
        public var orphans: OrphanPolicy

        /// A target checked with `orphans` as its orphan policy.
        public init(_ target: any GrantTarget, orphans: OrphanPolicy) {
            self.target = target
            self.orphans = orphans
        }
    }

    let engine: Engine
    let targets: [String: Target]
    let clock: any WallClock
    let logger: Logger
    let metricsFactory: (any MetricsFactory)?

    /// - Parameters:
    ///   - engine: supplies the store, the safety limits and the policy set in force.
    ///   - targets: the targets to check; each gets its own connection.
    ///   - metricsFactory: where gauges go; nil uses the global metrics system.
    public init(
        engine: Engine, targets: [Target], clock: any WallClock = SystemWallClock(), logger: Logger,
        metricsFactory: (any MetricsFactory)? = nil
    ) {
        self.engine = engine
        self.targets = Dictionary(targets.map { ($0.target.id, $0) }, uniquingKeysWith: { first, _ in first })
        self.clock = clock
        self.logger = logger
        self.metricsFactory = metricsFactory
    }

    /// A checker for the configured HTTP targets, each read over its own connection.
    public convenience init(
        engine: Engine, configurations: [TargetConfiguration], clock: any WallClock = SystemWallClock(), logger: Logger,
        metricsFactory: (any MetricsFactory)? = nil
    ) throws {
        let targets = try configurations.map {
            Target(try HTTPGrantTarget(configuration: $0, clock: clock), orphans: $0.orphans)
        }
        self.init(engine: engine, targets: targets, clock: clock, logger: logger, metricsFactory: metricsFactory)
    }

    /// The ids of the targets this checker knows, sorted.
    public var targetIDs: [String] { targets.keys.sorted() }

    /// Checks every target at once; one slow or unreachable target delays no other's repairs.
    /// Throws the first store failure after all checks finished.
    public func checkAll(actor: Actor = .policy) async throws -> [DriftReport] {
        try await withThrowingTaskGroup(of: DriftReport.self) { group in
            for id in targetIDs {
                group.addTask { try await self.check(target: id, actor: actor) }
            }
            var reports: [DriftReport] = []
            var failure: (any Error)?
            while let next = await group.nextResult() {
                switch next {
                case .success(let report): reports.append(report)
                case .failure(let error): failure = failure ?? error
                }
            }
            if let failure { throw failure }
            return reports.sorted { $0.target < $1.target }
        }
    }

    /// Checks one target and commits the repairs the safety gates allow. Repairs the gates
    /// hold are recorded as a held plan of scope `target:<id>` (audited once while it stays
    /// held), for an operator to approve with ``approve(planID:target:actor:)``.
    /// - Parameter approving: the id of a held drift plan an operator approved: applied if a
    ///   fresh check gives the same id, whatever the gates say.
    /// - Throws: ``TargetError`` for a target it does not know; ``StoreError`` when the store fails.
    public func check(target id: String, actor: Actor = .policy, approving: String? = nil) async throws -> DriftReport {
        let entry = try entry(id)
        let reading: Reading
        do {
            reading = try await read(id, entry)
        } catch let failure as Unreadable {
            Counter(label: "tether_drift_unknown_total", dimensions: [("target", id)], factory: factory).increment()
            logger.warning(
                "target state unknown; drift not checked, nothing revoked or re-sent",
                metadata: ["target": "\(id)", "error": "\(failure.error)"])
            return DriftReport(target: id, outcome: .unknown(reason: "\(failure.error)"), drift: nil, applied: [])
        }
        return try await settle(reading, actor: actor, approving: approving)
    }

    /// Applies a held drift plan of `target` (`tether approve`) if a fresh read of the target
    /// gives the same plan; else the plan is stale and nothing is applied.
    /// - Throws: ``TargetError`` when the target is not configured or cannot be read now (its
    ///   state is unknown: nothing is applied); ``StoreError`` when the store fails.
    public func approve(planID: String, target id: String, actor: Actor) async throws -> ApprovalOutcome {
        let entry = try entry(id)
        guard let recorded = try await engine.reads.plan(id: planID) else { return .notFound }
        guard recorded.status == .held else { return .notHeld(recorded.status) }
        let reading: Reading
        do {
            reading = try await read(id, entry)
        } catch let failure as Unreadable {
            throw TargetError(.unreachable, target: id, "cannot read the target to approve \(planID): \(failure.error)")
        }
        let policySet = await engine.configuration.policySet.hash
        let plan = reading.drift.plan(policies: reading.baseline.policies, policySet: policySet)
        guard reading.drift.id == planID else { return .stale(fresh: plan) }
        _ = try await settle(reading, actor: actor, approving: planID)
        return .applied(plan)
    }

    /// The store's view of a target and how the target differs from it.
    private struct Reading {
        var baseline: TargetBaseline
        var drift: TargetDrift
    }

    /// The target could not be read in full: its state is unknown, not empty.
    private struct Unreadable: Error {
        var error: any Error
    }

    /// Reads the store's baseline, then the target's grants, and compares them.
    /// - Throws: ``Unreadable`` when the target cannot be read; ``StoreError`` when the store fails.
    private func read(_ id: String, _ entry: Target) async throws -> Reading {
        let baseline = try await engine.targetBaseline(target: id)
        let held: [Grant]
        do {
            held = try await entry.target.grants()
        } catch {
            throw Unreadable(error: error)
        }
        let drift = TargetDrift.compare(target: id, baseline: baseline, held: held, orphans: entry.orphans)
        Gauge(label: "tether_target_orphans", dimensions: [("target", id)], factory: factory).record(drift.orphans.count)
        Gauge(label: "tether_target_missing", dimensions: [("target", id)], factory: factory).record(drift.missing.count)
        return Reading(baseline: baseline, drift: drift)
    }

    /// Commits, through the engine, the repairs of `reading` the safety gates allow, or holds
    /// them; `approving` names a held plan an operator approved, applied whatever the gates
    /// say if it matches.
    private func settle(_ reading: Reading, actor: Actor, approving: String?) async throws -> DriftReport {
        let (baseline, drift, id) = (reading.baseline, reading.drift, reading.drift.target)
        guard !drift.isInStep else {
            // In step: whatever drift was held for this target no longer is.
            try await engine.settle(.inStep(target: id), actor: actor)
            return DriftReport(target: id, outcome: .applied, drift: drift, applied: [])
        }
        let configuration = await engine.configuration
        let policySet = configuration.policySet.hash
        let time = clock.now()
        let reason = drift.holdReason(safety: configuration.safety)
        if let reason, approving != drift.id {
            logger.warning(
                "target drift held by the safety gates",
                metadata: ["target": "\(drift.target)", "plan": "\(drift.id)", "held": "\(reason)"])
            try await engine.settle(.hold(drift.plan(policies: baseline.policies, policySet: policySet, held: reason)), actor: actor)
            return DriftReport(target: id, outcome: .held(reason: reason), drift: drift, applied: [])
        }
        let repairs = drift.repairs(policies: baseline.policies, policySet: policySet, actor: actor, time: time)
        let applied = try await engine.settle(
            .repair(
                target: id, plan: drift.id, repairs: repairs, approving: reason != nil, unchangedAfter: baseline.auditSeq,
                time: time),
            actor: actor)
        let count = { (kind: TargetRepair.Kind) in applied.count { $0.kind == kind } }
        logger.notice(
            "target drift repaired",
            metadata: [
                "target": "\(id)", "plan": "\(drift.id)", "orphans": "\(drift.orphans.count)", "missing": "\(drift.missing.count)",
                "revoked": "\(count(.revokeOrphan))", "reported": "\(count(.reportOrphan))", "resent": "\(count(.resend))",
            ])
        return DriftReport(target: id, outcome: .applied, drift: drift, applied: applied)
    }

    private func entry(_ id: String) throws -> Target {
        guard let entry = targets[id] else {
            throw TargetError(.configuration, target: id, "no such target; known: \(targetIDs.joined(separator: ", "))")
        }
        return entry
    }

    private var factory: any MetricsFactory { metricsFactory ?? MetricsSystem.factory }
}

/// What a drift check found on one target and what it did.
public struct DriftReport: Sendable, Hashable {
    /// What the check did.
    public enum Outcome: Sendable, Hashable {
        /// The repairs the gates allow were committed (none when the target is in step).
        case applied
        /// The safety gates held the repairs: nothing was committed but a `plan.held` record.
        case held(reason: String)
        /// The target could not be read in full: unknown, not absent; nothing was done.
        case unknown(reason: String)
    }

    /// The target's id.
    public var target: String
    /// What the check did.
    public var outcome: Outcome
    /// The difference found; nil when the target's state is unknown.
    public var drift: TargetDrift?
    /// The repairs committed: changes queued for the target, orphans reported. A repair the
    /// store found no longer true (the grant changed during the check) is not among them.
    public var applied: [TargetRepair]

    /// A report of a check of `target`.
    public init(target: String, outcome: Outcome, drift: TargetDrift?, applied: [TargetRepair]) {
        self.target = target
        self.outcome = outcome
        self.drift = drift
        self.applied = applied
    }

    /// Orphans found on the target.
    public var orphans: [Grant] { drift?.orphans ?? [] }
    /// Grants the target lacks.
    public var missing: [Grant] { drift?.missing ?? [] }
}
