import Foundation
import Metrics
import TetherCore
import TetherStore

/// The single writer of grants. Sources hand it lifecycle events; it decides with the pure
/// core, applies each decision as one store commit with its audit records, and answers
/// operators' plans, approvals and explanations.
public actor Engine {
    /// The store this engine writes: the only holder of the whole store, so the only writer.
    nonisolated let store: any StateStore
    /// The store as readers see it: what status, explanations, metrics and sources read.
    public nonisolated var reads: any StateReading & AuditReading { store }
    let clock: any WallClock
    /// The configuration in force, as the file gives it: its agents are the configured ones.
    public private(set) var configuration: EngineConfiguration {
        didSet { refreshAgentsInForce() }
    }
    /// The agents registered at runtime (SPEC §15), disabled ones included, in the order
    /// registered; nil until read from the store under the gate (``lock()``).
    var registered: [Agent]? {
        didSet { refreshAgentsInForce() }
    }
    /// ``configuration`` with the registered agents that are not disabled in its policy set:
    /// what every decision runs under. Kept in step with both.
    private(set) var inForce: EngineConfiguration

    /// Serialises every read–decide–write: see ``AsyncMutex``.
    let gate = AsyncMutex()

    /// The runtime check index, kept in step with every commit.
    public nonisolated let index: CheckIndex

    public init(
        store: any StateStore, configuration: EngineConfiguration, clock: any WallClock = SystemWallClock(),
        index: CheckIndex = CheckIndex()
    ) {
        self.store = store
        self.configuration = configuration
        self.inForce = configuration
        self.clock = clock
        self.index = index
    }

    /// Loads the check index from the store; call once before serving checks.
    public func loadIndex() async throws {
        try await lock()
        defer { gate.unlock() }
        try await index.load(
            from: store, agents: inForce.policySet.agents, disabled: disabledAgents, policySet: configuration.policySet.hash)
    }

    /// Forgets what the engine keeps of the store and reads it again: the registered agents
    /// and the check index. What a node does when it becomes the leader, and what a follower
    /// does when other nodes committed more than grants (SPEC §14).
    public func refreshFromStore() async throws {
        await gate.lock()
        registered = nil
        gate.unlock()
        try await loadIndex()
    }

    /// Takes the gate (see ``AsyncMutex``), having read the registered agents from the store
    /// once: no decision is taken without them, or it would revoke their grants.
    func lock() async throws {
        await gate.lock()
        guard registered == nil else { return }
        do {
            registered = try await store.registeredAgents()
            index.setAgents(inForce.policySet.agents, disabled: disabledAgents)
        } catch {
            gate.unlock()
            throw error
        }
    }

    /// Recomputes ``inForce`` from the configuration and the registry.
    private func refreshAgentsInForce() {
        var next = configuration
        next.policySet = configuration.policySet.adding(registered: (registered ?? []).filter(\.active))
        inForce = next
    }

    /// Registered agents that are disabled, and not shadowed by a configured agent of their id.
    var disabledAgents: Set<String> {
        Set((registered ?? []).filter { !$0.active && configuration.policySet.agent($0.id) == nil }.map(\.id))
    }

    /// Commits `changeset` and then updates the check index, before the caller hears back.
    @discardableResult
    func commit(_ changeset: Changeset) async throws -> CommitReceipt {
        let receipt = try await store.commit(changeset)
        committed([changeset], receipt: receipt)
        return receipt
    }

    /// What follows every commit, whoever wrote it: the check index (at the commit's last
    /// audit seq) and the metrics.
    func committed(_ changesets: [Changeset], receipt: CommitReceipt) {
        index.apply(changesets, revision: receipt.auditSeqs?.upperBound)
        for changeset in changesets { recordMetrics(of: changeset) }
    }

    private func recordMetrics(of changeset: Changeset) {
        for entry in changeset.audit where entry.action == .safetyWindowExceeded {
            Counter(label: "tether_safety_window_exceeded_total", dimensions: [("source", entry.fields["source"] ?? "")])
                .increment()
        }
        let revocations = changeset.steps.count { if case .revoke = $0 { true } else { false } }
        if !changeset.steps.isEmpty {
            Recorder(label: "tether_plan_steps").record(changeset.steps.count)
        }
        if revocations > 0 {
            Counter(label: "tether_revocations_total").increment(by: revocations)
            if let received = changeset.event?.receivedAt {
                // Event received → revocation committed: the race against a leaver's agent.
                Timer(label: "tether_revocation_latency_seconds")
                    .recordNanoseconds(Int64(max(0, clock.now().timeIntervalSince(received)) * 1_000_000_000))
            }
        }
    }

    /// The policy set in force, with the registered agents that are not disabled.
    var policySet: PolicySet { inForce.policySet }

    /// Decisions under the configuration in force (the registered agents included), counting
    /// grants from the check index once it is loaded.
    var decider: Decider {
        Decider(
            configuration: inForce, knownGrantCount: index.loadedCount,
            retiredAgents: Dictionary(uniqueKeysWithValues: disabledAgents.map { ($0, "is disabled") }))
    }

    /// Decides `work` from one read transaction and commits what it decided (updating the
    /// check index): lock held by the caller → inspect and decide → commit.
    func decideAndCommit(_ work: EventWork) async throws -> EventOutcome {
        let decider = decider
        let decision = try await store.inspect { reads in try decider.decide(work, reads: reads) }
        if let changeset = decision.changeset { try await commit(changeset) }
        return decision.outcome
    }

    /// Audits the configuration, swaps it in once that record is committed, and reconciles
    /// everything under the new policy.
    ///
    /// If the `config.reloaded` record cannot be committed, the error is thrown and the
    /// configuration in force (policies, agents, lifecycle, safety, targets) stays as it was:
    /// a configuration never runs unrecorded.
    public func reload(_ next: EngineConfiguration, actor: Actor) async throws -> ReconcileOutcome {
        try await lock()
        defer { gate.unlock() }
        try await adoptHoldingLock(next, actor: actor)
        return try await reconcileHoldingLock(origin: .other, actor: .policy, dryRun: false)
    }

    /// Commits the `config.reloaded` record for `next`, then puts `next` in force; on a failed
    /// commit it throws and the configuration in force stays. Reconciles nothing: the caller
    /// swaps its own settings once this returns, then calls ``reconcile(origin:actor:dryRun:)``.
    public func adopt(_ next: EngineConfiguration, actor: Actor) async throws {
        try await lock()
        defer { gate.unlock() }
        try await adoptHoldingLock(next, actor: actor)
    }

    private func adoptHoldingLock(_ next: EngineConfiguration, actor: Actor) async throws {
        let previous = configuration.policySet.hash
        var changeset = Changeset(time: clock.now())
        changeset.audit.append(AuditEntry(
            action: .configReloaded, actor: actor, time: changeset.time,
            fields: ["policySet": next.policySet.hash, "reason": "policy set \(previous) replaced"]))
        try await commit(changeset)
        configuration = next
        index.setAgents(policySet.agents, disabled: disabledAgents)
        index.setPolicySet(next.policySet.hash)
    }

    /// Records that a configuration was refused, keeping the one in force.
    public func recordRejectedConfiguration(_ reason: String, actor: Actor) async throws {
        try await lock()
        defer { gate.unlock() }
        var changeset = Changeset(time: clock.now())
        changeset.audit.append(AuditEntry(
            action: .configRejected, actor: actor, time: changeset.time,
            fields: ["reason": reason, "policySet": policySet.hash]))
        try await commit(changeset)
    }
}
