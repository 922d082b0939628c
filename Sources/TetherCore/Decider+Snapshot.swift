import Foundation

extension Decider {
    /// What a complete directory read decides: every user upserted, every identity this
    /// source knew but no longer lists terminated, then one full reconciliation through the
    /// safety gates. Its revocations count in the source's window like streamed ones.
    ///
    /// When the plan is held, nothing is applied — neither identities nor grants — and the
    /// identity changes wait with the held plan for `tether approve`.
    /// - Parameter cancelled: whether the read was called off (a daemon asked to stop): it is
    ///   dropped with nothing written, and read again at start.
    package func decide(
        _ snapshot: DirectorySnapshot, actor: Actor, now: Date, reads: any DecisionReads,
        cancelled: @escaping @Sendable () -> Bool = { false }
    ) throws -> ReconcileDecision {
        let changes = try identityChanges(from: snapshot, now: now, reads: reads)
        if cancelled() { throw CancellationError() }
        var (plan, view) = try fullPlan(
            origin: .sourceScan(users: snapshot.users.count), overlay: changes.map(\.identity), reads: reads,
            cancelled: cancelled)
        if cancelled() { throw CancellationError() }
        var window: RevocationWindow?
        if plan.held == nil, plan.revocations > 0 {
            let check = try windowCheck(
                revocations: plan.revocations, source: snapshot.source, now: now,
                waiting: try heldWindowPlan(snapshot.source, reads: reads), reads: reads)
            switch check {
            case .within(let counted): window = counted
            case .exceeded(let reason, _, _): plan.held = reason
            }
        }

        var changeset = Changeset(time: now)
        var state = try reads.sourceState(snapshot.source) ?? SourceState(source: snapshot.source, health: .ok)
        state.health = .ok
        state.mode = snapshot.mode
        state.lastSuccess = now
        state.lastError = nil
        state.lastScanUsers = snapshot.users.count
        if plan.held != nil {
            if try reads.plan(id: plan.id)?.status == .held {
                let supersession = Supersession(scope: plan.scope, actor: actor, includingHeldReads: true, keeping: plan.id)
                return ReconcileDecision(outcome: .held(plan), changeset: try self.changeset(for: supersession, now: now, reads: reads))
            }
            changeset.sourceState = state
            changeset.pendingIdentities = changes.map(\.identity)
            add(plan, agentStates: [], to: &changeset, actor: actor, event: nil, afterRead: true)
            return ReconcileDecision(outcome: .held(plan), changeset: changeset)
        }
        if let cookie = snapshot.cookie { state.cookie = cookie }
        changeset.sourceState = state
        if let window { count(plan.revocations, in: window, source: snapshot.source, changeset: &changeset) }
        for change in changes {
            changeset.identities.append(change.identity)
            if let entry = AuditEntry.identityTransition(
                change.transition, of: change.identity, source: snapshot.source, reason: change.reason, event: nil,
                actor: actor, time: now)
            {
                changeset.audit.append(entry)
            }
        }
        add(plan, agentStates: view.changed, to: &changeset, actor: actor, event: nil, afterRead: true)
        return ReconcileDecision(outcome: .applied(plan), changeset: changeset)
    }

    /// One identity a complete read changes, with its transition and why.
    package struct IdentityChange: Sendable {
        package var identity: Identity
        package var transition: IdentityTransition
        package var reason: String
    }

    /// The identities a snapshot changes. Decided against what it keeps of each stored
    /// identity (``KnownIdentity``): only the identities the read changes are read whole, so
    /// a directory of a hundred thousand people is never held twice.
    package func identityChanges(from snapshot: DirectorySnapshot, now: Date, reads: any DecisionReads) throws -> [IdentityChange] {
        let source = snapshot.source
        let lifecycle = configuration.lifecycle
        let correlator = configuration.correlator
        // Every stored identity in brief, in an array (a dictionary of them would be twice
        // the size). Identities are numbered: the stored ones by their place in `known`, those
        // the read adds after them; the indexes map keys to numbers, not to ids.
        var known: [KnownIdentity] = []
        known.reserveCapacity(snapshot.users.count)
        var managerKeys: Set<String> = []
        try reads.eachIdentity { identity in
            var entry = KnownIdentity(identity, source: source)
            if let key = entry.managerKey { entry.managerKey = managerKeys.insert(key).memberAfterInsert }
            // Whether merging its sources again would change more than its manager (a
            // precedence changed since it was stored): then it is settled below like a changed one.
            var merged = identity
            lifecycle.merge(into: &merged) { _, _ in nil }
            merged.manager = identity.manager
            entry.isMerged = merged == identity
            known.append(entry)
        }
        managerKeys = []
        // Sized once: growing a table of a hundred thousand keys holds it twice for a moment.
        let people = max(known.count, snapshot.users.count)
        var numbers = [IdentityID: Int32](minimumCapacity: known.count)
        var added: [IdentityID] = []
        func id(_ number: Int32) -> IdentityID {
            Int(number) < known.count ? known[Int(number)].id : added[Int(number) - known.count]
        }
        var linked = [String: Int32](minimumCapacity: people)
        // One table per correlation key, in the correlator's order.
        var byKey = correlator.keys.map { _ in [String: Int32](minimumCapacity: people) }
        func index(_ number: Int32, _ candidate: some Correlatable) {
            if let key = candidate.externalId(in: source) { linked[key] = number }
            for (slot, key) in correlator.keys.enumerated() {
                if let value = candidate.correlationValue(key) { byKey[slot][value] = number }
            }
        }
        for (offset, entry) in known.enumerated() {
            numbers[entry.id] = Int32(offset)
            index(Int32(offset), entry)
        }
        func brief(_ id: IdentityID) -> KnownIdentity? {
            numbers[id].flatMap { Int($0) < known.count ? known[Int($0)] : nil }
        }
        func resolve(_ key: String) -> IdentityID? { linked[key].map(id) }
        // The stored identities the read changes, as stored, and what it makes of them.
        var stored: [IdentityID: Identity] = [:]
        var updated: [IdentityID: Identity] = [:]
        func whole(_ id: IdentityID) throws -> Identity? {
            if let identity = stored[id] { return identity }
            guard brief(id) != nil, let identity = try reads.identity(id: id) else { return nil }
            stored[id] = identity
            return identity
        }
        func current(_ id: IdentityID) throws -> Identity? { try updated[id] ?? whole(id) }

        // Which stored identities the read lists.
        var seen = [Bool](repeating: false, count: known.count)
        func see(_ id: IdentityID) {
            if let number = numbers[id], Int(number) < known.count { seen[Int(number)] = true }
        }
        var reasons: [IdentityID: String] = [:]
        let ceiling = Timestamp.versionCeiling(now: now, tolerance: configuration.versionTolerance)
        for listed in snapshot.users {
            let facts = bounded(listed, now: now)
            var candidateIDs: [IdentityID] = []
            if let key = facts.externalId, let number = linked[key] { candidateIDs.append(id(number)) }
            for (slot, key) in correlator.keys.enumerated() {
                if let value = Correlator.value(key, of: facts), let number = byKey[slot][value] { candidateIDs.append(id(number)) }
            }
            let candidates = candidateIDs.compactMap { id in updated[id].map { KnownIdentity($0, source: source) } ?? brief(id) }
            var existing: Identity?
            if let match = correlator.match(facts, from: source, among: candidates) {
                let unchanged =
                    if let identity = updated[match.id] { identity.sources[source] == facts } else { match.facts == facts.hashValue }
                if unchanged {
                    see(match.id)
                    continue
                }
                existing = try current(match.id)
            }
            let event = LifecycleEvent(
                id: "\(source.rawValue):\(facts.externalId ?? facts.userName ?? "?"):\(facts.version)", source: source,
                kind: existing == nil ? .joiner : .mover, occurredAt: now, facts: facts, isExplicitLeaver: false)
            guard
                case .apply(let identity, _, _) = lifecycle.decide(
                    event, existing: existing, newID: Self.newIdentityID(for: event), ceiling: ceiling)
            else {
                // Stale, but listed: present in the directory, so never a leaver.
                if let existing { see(existing.id) }
                continue
            }
            see(identity.id)
            reasons[identity.id] = "\(source.rawValue) \(existing == nil ? "joiner" : "mover")"
            updated[identity.id] = identity
            let number =
                numbers[identity.id]
                ?? {
                    let number = Int32(known.count + added.count)
                    added.append(identity.id)
                    numbers[identity.id] = number
                    return number
                }()
            index(number, identity)
        }
        // Known to this source, absent from a complete read: a leaver. (Everyone the read
        // changed was seen, so what the store holds is current for the others.)
        for (offset, entry) in known.enumerated() where entry.isListed && !seen[offset] {
            let id = entry.id
            guard let identity = try whole(id), var facts = identity.sources[source], facts.status != .terminated else { continue }
            facts.status = .terminated
            facts.version = max(facts.version, Timestamp.version(now))
            let event = LifecycleEvent(
                id: "\(source.rawValue):\(facts.externalId ?? id):absent", source: source, kind: .leaver,
                occurredAt: now, facts: facts, isExplicitLeaver: false)
            guard case .apply(let next, _, _) = lifecycle.decide(event, existing: identity, newID: id, ceiling: ceiling) else {
                continue
            }
            reasons[id] = "\(source.rawValue) entry no longer present"
            updated[id] = next
            index(Int32(offset), next)
        }
        // Managers may be listed after their reports: resolve them once everyone is known.
        var changes: [IdentityChange] = []
        func settle(_ id: IdentityID) throws {
            guard var identity = try current(id) else { return }
            lifecycle.merge(into: &identity) { managerSource, key in
                managerSource == source ? resolve(key) : nil
            }
            if identity.manager == nil, let before = brief(id)?.manager,
                identity.sources.keys.contains(where: { $0 != source })
            {
                identity.manager = before
            }
            let before = try whole(id)
            guard identity != before else { return }
            let transition = before.map { lifecycle.transition(from: $0, to: identity) } ?? Self.arrival(identity)
            changes.append(IdentityChange(identity: identity, transition: transition, reason: reasons[id] ?? "\(source.rawValue) mover"))
        }
        for entry in known {
            // One the read did not change is read whole only if settling would change it.
            if updated[entry.id] != nil || !entry.isMerged || entry.manager(resolving: resolve) != entry.manager {
                try settle(entry.id)
            }
        }
        for id in updated.keys where brief(id) == nil { try settle(id) }
        return changes.sorted { $0.identity.id < $1.identity.id }
    }

    private static func arrival(_ identity: Identity) -> IdentityTransition {
        switch identity.status {
        case .active: .joined
        case .suspended: .suspended
        case .terminated: .terminated
        }
    }
}

/// What a complete read keeps of a stored identity: enough to match a listed person to it,
/// to see whether the read changes it, and to settle its manager. About a tenth of the
/// identity: its groups and attributes are not kept.
struct KnownIdentity: Correlatable {
    let id: IdentityID
    let source: Source
    /// The identity's key in the read's source.
    let externalId: String?
    let userName: String
    /// Lower case, as correlation compares it.
    let email: String?
    let employeeNumber: String?
    /// The hash of the source's facts as stored: equal facts have equal hashes, and a
    /// change that keeps the hash is a 64-bit collision of a per-process seeded hash.
    let facts: Int?
    /// The source knows the identity and has not ended it: absent from a read, a leaver.
    let isListed: Bool
    /// The source's key of the identity's manager.
    var managerKey: String?
    let manager: IdentityID?
    /// Another source knows the identity, so its manager stays when this one names none.
    let keepsManager: Bool
    /// Merging its sources again changes nothing but, perhaps, its manager.
    var isMerged = true

    init(_ identity: Identity, source: Source) {
        let facts = identity.sources[source]
        id = identity.id
        self.source = source
        externalId = facts?.externalId
        userName = identity.userName
        email = identity.email?.lowercased()
        employeeNumber = identity.employeeNumber
        self.facts = facts?.hashValue
        isListed = facts.map { $0.status != .terminated } ?? false
        managerKey = facts?.manager
        manager = identity.manager
        keepsManager = identity.sources.keys.contains { $0 != source }
    }

    func externalId(in source: Source) -> String? { source == self.source ? externalId : nil }

    func correlationValue(_ key: CorrelationKey) -> String? {
        switch key {
        case .employeeNumber: employeeNumber
        case .email: email
        case .userName: userName
        }
    }

    /// The manager settling gives the identity when its facts are unchanged: the one its
    /// manager key links to, else the one it has when another source knows it.
    func manager(resolving resolve: (String) -> IdentityID?) -> IdentityID? {
        managerKey.flatMap(resolve) ?? (keepsManager ? manager : nil)
    }
}
