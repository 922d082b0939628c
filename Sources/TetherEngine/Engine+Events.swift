import Foundation
import TetherCore
import TetherStore

extension Engine {
    /// Applies one lifecycle event: durably recorded, decided, and reconciled for that
    /// identity alone, in one commit. A leaver effective later is stored and applied by
    /// ``applyDueLeavers()``.
    public func submit(_ event: LifecycleEvent, actor: Actor? = nil) async throws -> EventOutcome {
        try await lock()
        defer { gate.unlock() }
        guard !event.id.isEmpty else { throw EngineError(.invalidEvent, "event has no id") }
        let now = clock.now()
        return try await decideAndCommit(EventWork(
            event: event.digested(), actor: actor ?? .source(event.source), receivedAt: now, now: now,
            checkDuplicate: true, mayBeScheduled: true))
    }

    /// Applies every scheduled leaver whose time has come; returns what each did.
    @discardableResult
    public func applyDueLeavers() async throws -> [EventOutcome] {
        try await lock()
        defer { gate.unlock() }
        var outcomes: [EventOutcome] = []
        for event in try await store.scheduledLeavers(dueBy: clock.now()) {
            let now = clock.now()
            outcomes.append(try await decideAndCommit(EventWork(
                event: event, actor: .scheduler, receivedAt: now, now: now, scheduled: true)))
        }
        return outcomes
    }

    /// Reverses a termination or suspension on an operator's word (`tether identities reactivate`).
    public func reactivate(userName: String, actor: Actor) async throws -> EventOutcome {
        try await lock()
        defer { gate.unlock() }
        guard let identity = try await store.identity(userName: userName) else {
            throw EngineError(.unknownIdentity, "no identity has userName \(userName)")
        }
        let now = clock.now()
        let event = LifecycleEvent(
            id: "op_" + UUID().uuidString.lowercased(), source: .operator, kind: .joiner, occurredAt: now,
            facts: IdentityFacts(status: .active, version: Timestamp.string(now)))
        return try await decideAndCommit(EventWork(event: event, actor: actor, receivedAt: now, now: now, target: identity))
    }

    /// Audits a request that was refused before it could become an event (`event.rejected`):
    /// a bad signature, an expired timestamp, a malformed body. Nothing else is written.
    public func recordRejectedEvent(source: Source, reason: String, event: String? = nil) async throws {
        try await lock()
        defer { gate.unlock() }
        var changeset = Changeset(time: clock.now())
        var fields = ["source": source.rawValue, "reason": reason]
        if let event { fields["event"] = event }
        changeset.audit.append(AuditEntry(action: .eventRejected, actor: .source(source), time: changeset.time, fields: fields))
        try await commit(changeset)
    }
}
