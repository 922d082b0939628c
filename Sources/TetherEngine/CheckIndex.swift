import Foundation
import Synchronization
import TetherCore
import TetherStore

/// The in-memory answer to `POST /v1/check`: grants by (subject, agent), identity statuses
/// and agent quarantines. The engine updates it right after each commit and before it
/// answers the caller, so a check issued after a leaver's response already denies.
public final class CheckIndex: Sendable {
    struct Key: Hashable {
        var subject: String
        var agent: String
    }

    struct State {
        var grants = GrantTable()
        /// Statuses by userName: two records may share a userName (a rehire).
        var statuses: [String: NameRecords] = [:]
        var userNames: [IdentityID: String] = [:]
        var quarantines: [String: String] = [:]
        var agents: Set<String> = []
        /// Registered agents that are disabled: checks for them are denied as such.
        var disabled: Set<String> = []
        /// Deny exceptions by (subject, agent): a deny narrower than a grant leaves the grant
        /// in place, so the check consults them too.
        var denies: [Key: [AccessException]] = [:]
        /// The audit seq of the last commit reflected (see ``revision``).
        var revision = 0
        /// The hash of the policy set in force.
        var policySet = ""
        /// Whether ``load(from:agents:)`` has run: only then does `count` mirror the store.
        var loaded = false
    }

    private let state = Mutex(State())
    /// Checks waiting for the index to reach a revision (`atLeast`), resumed as it moves.
    private let waiters = Mutex<[UUID: (revision: Int, continuation: CheckedContinuation<Void, Never>)]>([:])
    /// When each grant and agent was last allowed, since the last flush (SPEC §15 "Usage").
    public let usage: UsageRecorder

    /// - Parameter usageClock: the time allowed checks are recorded at.
    public init(usageClock: any WallClock = SystemWallClock()) {
        usage = UsageRecorder(clock: usageClock)
    }

    /// The number of grants indexed.
    public var count: Int { state.withLock { $0.grants.count } }

    /// The number of grants in the store, known without counting them there once the index
    /// has been loaded (every commit updates it); nil before.
    var loadedCount: Int? { state.withLock { $0.loaded ? $0.grants.count : nil } }

    /// The index's revision: the audit seq of the last record committed by the last commit
    /// the index reflects (the store's last seq when it was loaded). A check answered at
    /// revision R saw every commit whose audit records end at or before R, and none after.
    /// A commit without audit records leaves it as it was.
    public var revision: Int { state.withLock { $0.revision } }

    /// Decides a request from the indexed state.
    public func decide(_ request: CheckRequest) -> CheckDecision { answer(request).decision }

    /// Decides a request from the indexed state, with the revision and the policy set (its
    /// hash) the answer came from, read under the same lock as the state.
    public func answer(_ request: CheckRequest) -> (decision: CheckDecision, revision: Int, policySet: String) {
        let key = Key(subject: request.subject, agent: request.agent)
        let (entries, status, known, quarantine, denies, revision, policySet, disabled) = state.withLock { state in
            (
                state.grants.candidates(subject: request.subject, agent: request.agent, scope: request.scope),
                state.statuses[request.subject]?.status,
                state.agents.contains(request.agent), state.quarantines[request.agent],
                state.denies.isEmpty ? nil : state.denies[key], state.revision, state.policySet,
                state.disabled.isEmpty ? false : state.disabled.contains(request.agent)
            )
        }
        let decision = Authorization.decide(
            request, candidates: entries, subjectStatus: status, agentKnown: known, agentQuarantined: quarantine,
            deny: denies?.first { $0.covers(scope: request.scope, resource: request.resource) }, agentDisabled: disabled)
        if decision.allowed, let grant = decision.grant { usage.record(grant: grant, agent: request.agent) }
        return (decision, revision, policySet)
    }

    /// Replaces the whole index with the store's state, under `policySet` (its hash), with
    /// `agents` in force and the `disabled` registered ones.
    public func load(
        from store: any StateStore, agents: [Agent], disabled: Set<String> = [], policySet: String = ""
    ) async throws {
        var next = State()
        next.loaded = true
        next.agents = Set(agents.map(\.id))
        next.disabled = disabled
        next.policySet = policySet
        next.revision = try await store.lastAuditSeq()
        // Policies come from their own column: a million lineages are never decoded here.
        next.grants.reserve(grants: try await store.grantCount())
        next = try await store.reduceGrantPolicies(into: next) { state, grant, policy in
            state.grants.insert(grant, policy: policy)
        }
        let summaries = try await store.identitySummaries()
        next.statuses.reserveCapacity(summaries.count)
        next.userNames.reserveCapacity(summaries.count)
        for identity in summaries {
            next.statuses[identity.userName] = NameRecords.setting(identity.id, identity.status, in: next.statuses[identity.userName])
            next.userNames[identity.id] = identity.userName
        }
        for (agent, agentState) in try await store.agentStates() where agentState.quarantined {
            next.quarantines[agent] = agentState.reason ?? "sponsor not active"
        }
        for exception in try await store.exceptions() where exception.effect == .deny {
            next.denies[Key(subject: exception.subject, agent: exception.agent), default: []].append(exception)
        }
        state.withLock { $0 = next }
        revisionMoved()
    }

    /// Applies what committed changesets changed, all under one lock, and moves to
    /// `revision` (the last audit seq of their commit) when it is given.
    func apply(_ changesets: some Sequence<Changeset>, revision: Int?) {
        state.withLock { state in
            for changeset in changesets { Self.apply(changeset, to: &state) }
            if let revision { state.revision = max(state.revision, revision) }
        }
        if revision != nil { revisionMoved() }
    }

    /// Takes in what other nodes committed since this index's revision (a follower, SPEC §14):
    /// each grant as the store now has it, the statuses of the identities whose records
    /// changed, and the store's head as the new revision.
    public func catchUp(_ changes: RevisionChanges) {
        state.withLock { state in
            for (id, stored) in changes.grants {
                guard let owner = changes.owners[id] else { continue }
                state.grants.remove(id: id, subject: owner.subject, agent: owner.agent)
                if let stored { state.grants.insert(stored.grant, policy: stored.policy) }
            }
            for (userName, records) in changes.statuses {
                // The records that had this userName and no longer do (a rename); found through
                // the userName itself, not by going through every identity.
                for id in state.statuses[userName]?.ids ?? [] where records[id] == nil && state.userNames[id] == userName {
                    state.userNames[id] = nil
                }
                state.statuses[userName] = NameRecords(records)
                for id in records.keys { state.userNames[id] = userName }
            }
            state.revision = max(state.revision, changes.head)
        }
        revisionMoved()
    }

    /// Waits until the index has reached `revision`, at most `timeout`; true when it has.
    /// Suspends the caller without holding a thread.
    public func wait(forRevision revision: Int, timeout: Duration) async -> Bool {
        if self.revision >= revision { return true }
        let id = UUID()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withCheckedContinuation { continuation in
                    self.waiters.withLock { $0[id] = (revision, continuation) }
                    // It may have moved between the look and the registration.
                    self.revisionMoved()
                }
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                self.waiters.withLock { $0.removeValue(forKey: id) }?.continuation.resume()
            }
            // Whichever ends first, the other is ended: the waiter resumed, the sleep cancelled.
            _ = await group.next()
            self.waiters.withLock { $0.removeValue(forKey: id) }?.continuation.resume()
            group.cancelAll()
        }
        return self.revision >= revision
    }

    /// Resumes the waiters the index's revision now satisfies.
    private func revisionMoved() {
        let revision = self.revision
        let ready = waiters.withLock { waiters in
            let ready = waiters.filter { $0.value.revision <= revision }
            for id in ready.keys { waiters.removeValue(forKey: id) }
            return ready.values
        }
        for waiter in ready { waiter.continuation.resume() }
    }

    private static func apply(_ changeset: Changeset, to state: inout State) {
        for identity in changeset.identities {
            // A rename moves the record from one userName to another.
            if let old = state.userNames[identity.id], old != identity.userName {
                state.statuses[old] = NameRecords.removing(identity.id, from: state.statuses[old])
            }
            state.statuses[identity.userName] = NameRecords.setting(
                identity.id, identity.status, in: state.statuses[identity.userName])
            state.userNames[identity.id] = identity.userName
        }
        if !changeset.endedExceptions.isEmpty {
            let ended = Set(changeset.endedExceptions)
            state.denies = state.denies.compactMapValues { denies in
                let left = denies.filter { !ended.contains($0.id) }
                return left.isEmpty ? nil : left
            }
        }
        for exception in changeset.exceptions where exception.effect == .deny {
            state.denies[Key(subject: exception.subject, agent: exception.agent), default: []].append(exception)
        }
        for agentState in changeset.agentStates {
            state.quarantines[agentState.agent] = agentState.quarantined ? agentState.reason ?? "sponsor not active" : nil
        }
        for step in changeset.steps {
            switch step {
            case .grant(let justified, _):
                state.grants.insert(justified.grant, policy: justified.lineage.policy)
            case .revoke(let justified, _):
                state.grants.remove(justified.grant)
            case .quarantine, .release:
                continue
            }
        }
    }

    /// The agents in force now (a reload or a registration may add or remove some), and the
    /// registered agents that are disabled.
    func setAgents(_ agents: [Agent], disabled: Set<String>) {
        state.withLock { state in
            state.agents = Set(agents.map(\.id))
            state.disabled = disabled
        }
    }

    /// The hash of the policy set now in force (a reload may change it).
    func setPolicySet(_ hash: String) {
        state.withLock { $0.policySet = hash }
    }
}
