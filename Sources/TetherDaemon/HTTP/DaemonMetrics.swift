import Foundation
import Metrics
import Prometheus
import TetherCore
import TetherEngine
import TetherStore

/// The Prometheus registry and the gauges that are read from the store at scrape time
/// (grants, identities by status, held plans, sources, outbox). Counters and histograms
/// (revocations, plan sizes, revocation latency, check latency) are recorded where they
/// happen through swift-metrics.
final class DaemonMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    let store: any StateReading & OutboxQueue
    let engine: Engine
    let state: DaemonState
    let progress: WorkProgress
    /// Where last uses of agents are flushed; nil: no `tether_agent_last_used_seconds`.
    let usage: (any UsageStore)?

    init(
        registry: PrometheusCollectorRegistry, store: any StateReading & OutboxQueue, engine: Engine, state: DaemonState,
        progress: WorkProgress, usage: (any UsageStore)? = nil
    ) {
        self.usage = usage
        self.registry = registry
        self.store = store
        self.engine = engine
        self.state = state
        self.progress = progress
        registry.makeGauge(
            name: "tether_build_info", labels: [("version", BuildInfo.current.version), ("commit", BuildInfo.current.commitLabel)],
            help: "Always 1: the running build's version and commit (unknown when the build was not stamped)"
        ).set(1.0)
    }

    /// Bootstraps swift-metrics with a Prometheus backend; once per process.
    static func bootstrap() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
            .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
            .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
        ]
        MetricsSystem.bootstrap(factory)
        return registry
    }

    func render() async throws -> [UInt8] {
        registry.makeGauge(name: "tether_grants", help: "Grants in the store").set(Double(try await store.grantCount()))
        for (status, count) in try await store.identityCounts() {
            registry.makeGauge(name: "tether_identities", labels: [("status", status.rawValue)], help: "Identities by status").set(Double(count))
        }
        registry.makeGauge(name: "tether_held_plans", help: "Plans held for operator approval")
            .set(Double(try await store.planCount(status: .held)))
        let exceptions = try await store.exceptions()
        for effect in [AccessException.Effect.grant, .deny] {
            registry.makeGauge(name: "tether_exceptions", labels: [("effect", effect.rawValue)], help: "Exceptions to policy in force")
                .set(Double(exceptions.count { $0.effect == effect }))
        }
        for (source, window) in try await engine.safetyWindows(at: Date()) {
            let labels = [("source", source.rawValue)]
            registry.makeGauge(
                name: "tether_safety_window_revocations", labels: labels,
                help: "Revocations a source caused within safety.window, counted against the safety limits"
            ).set(Double(window.revocations))
            registry.makeGauge(
                name: "tether_safety_window_held_revocations", labels: labels,
                help: "Revocations from a source past its window's budget, held until an operator approves or rejects them"
            ).set(Double(window.held?.revocations ?? 0))
        }
        for (source, sourceState) in try await store.sourceStates() {
            let labels = [("source", source.rawValue)]
            registry.makeGauge(name: "tether_source_degraded", labels: labels, help: "1 while a source is degraded")
                .set(sourceState.health == .degraded ? 1.0 : 0.0)
            if let unreadable = sourceState.unreadableEntries {
                registry.makeGauge(
                    name: "tether_source_unreadable_entries", labels: labels,
                    help: "Entries of a source that cannot be read or mapped; their people keep their state"
                ).set(Double(unreadable))
            }
            if let success = sourceState.lastSuccess {
                registry.makeGauge(name: "tether_source_last_success_timestamp_seconds", labels: labels, help: "Last successful read of a source")
                    .set(success.timeIntervalSince1970)
            }
        }
        let now = Date()
        for target in await state.configuration.targets {
            let backlog = try await store.outboxBacklog(target: target.id)
            let labels = [("target", target.id)]
            registry.makeGauge(name: "tether_outbox_pending", labels: labels, help: "Changes waiting for a target").set(Double(backlog.pending))
            registry.makeGauge(name: "tether_outbox_oldest_seconds", labels: labels, help: "Age of the oldest undelivered change")
                .set(backlog.oldestCreatedAt.map { now.timeIntervalSince($0) } ?? 0)
        }
        let current = progress.current
        for work in ["directory read", "full reconciliation"] {
            let labels = [("work", work.replacingOccurrences(of: " ", with: "_"))]
            let running = current.first { $0.work == work }
            registry.makeGauge(name: "tether_work_in_progress", labels: labels, help: "1 while this long work runs")
                .set(running == nil ? 0.0 : 1.0)
            registry.makeGauge(name: "tether_work_done", labels: labels, help: "Entries the running phase of this work has done")
                .set(Double(running?.done ?? 0))
            registry.makeGauge(
                name: "tether_work_total", labels: labels,
                help: "Entries the running phase expects (the server's estimate or the previous read); 0 when unknown"
            ).set(Double(running?.total ?? 0))
        }
        let agents = try await engine.agents()
        renderSponsors(agents)
        try await renderUsage(now: now, agents: agents)
        return registry.emitToBuffer()
    }

    /// `tether_agent_active_sponsors{agent}`: how many sponsors of each agent in force
    /// (configured, or registered and not disabled) are active identities. 1 is one departure
    /// from quarantine (`tether status` lists those agents); 0 is quarantined.
    private func renderSponsors(_ agents: [AgentListing]) {
        for listing in agents where listing.agent.active {
            registry.makeGauge(
                name: "tether_agent_active_sponsors", labels: [("agent", listing.agent.id)],
                help: "Sponsors of the agent that are active identities; at 0 the agent is quarantined"
            ).set(Double(listing.activeSponsors.count))
        }
    }

    /// `tether_agent_last_used_seconds{agent}`: seconds since a check last allowed something
    /// through each agent (configured or registered), as of the last flush of usage
    /// (`usage.flushInterval`). An agent no check has allowed yet has no sample:
    /// `tether agents --unused` lists it.
    private func renderUsage(now: Date, agents: [AgentListing]) async throws {
        guard let usage else { return }
        let lastUsed = try await usage.agentUsage()
        for agent in agents.map(\.agent) {
            guard let second = lastUsed[agent.id] else { continue }
            registry.makeGauge(
                name: "tether_agent_last_used_seconds", labels: [("agent", agent.id)],
                help: "Seconds since a check last allowed something through the agent, as of the last usage flush"
            ).set(max(0, now.timeIntervalSince1970 - Double(second)))
        }
    }
}
