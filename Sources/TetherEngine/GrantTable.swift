import TetherCore

/// The check index's grants, held compactly.
///
/// A directory of a million people has ten million grants, and the names in them repeat: a
/// subject has a handful of grants, a scope or a resource is shared by thousands, a policy by
/// hundreds of thousands. Every distinct name is stored once and called by a 32-bit number;
/// a grant is three numbers (scope, resource, policy) in the list of its (subject, agent)
/// pair. That is about 40 bytes a grant, where the grants as structs of strings took 300.
///
/// Names are never forgotten while the table lives: one that no grant uses any more (a leaver's
/// userName) stays until the index is loaded again, at the daemon's next start. Their number
/// grows with the distinct names seen, not with the changes made.
struct GrantTable {
    /// One grant of a (subject, agent) pair: its scope, resource and policy, by number.
    struct Packed: Equatable {
        var scope: UInt32
        var resource: UInt32
        var policy: UInt32
    }

    private var names = NumberedNames<UInt32>()
    /// (subject number << 32 | agent number) → the pair's grants.
    private var grants: [UInt64: [Packed]] = [:]
    /// The number of grants held.
    private(set) var count = 0

    /// Makes room for `count` grants, so a full load does not rehash as it grows.
    mutating func reserve(grants count: Int) {
        // A subject has a few grants through each agent: pairs are about a third of grants.
        grants.reserveCapacity(count / 3)
    }

    /// Adds a grant given by `policy`. A grant already held is held twice (the caller removes
    /// before it adds again).
    mutating func insert(_ grant: Grant, policy: String) {
        let pair = Self.pair(names.number(grant.subject), names.number(grant.agent))
        let packed = Packed(
            scope: names.number(grant.scope), resource: names.number(grant.resource), policy: names.number(policy))
        grants[pair, default: []].append(packed)
        count += 1
    }

    /// Removes every copy of `grant`; returns how many there were.
    @discardableResult
    mutating func remove(_ grant: Grant) -> Int {
        guard let pair = existingPair(grant.subject, grant.agent),
            let scope = names.number(of: grant.scope), let resource = names.number(of: grant.resource)
        else { return 0 }
        return remove(from: pair) { $0.scope == scope && $0.resource == resource }
    }

    /// Removes the grant of `subject` through `agent` whose id is `id`; returns how many were held.
    @discardableResult
    mutating func remove(id: String, subject: String, agent: String) -> Int {
        guard let pair = existingPair(subject, agent) else { return 0 }
        let names = names
        return remove(from: pair) { packed in
            Grant(subject: subject, agent: agent, scope: names.held(packed.scope), resource: names.held(packed.resource)).id == id
        }
    }

    /// The grants of `subject` through `agent` with `scope`, with their policies: the only
    /// ones a check of that scope can be allowed by.
    func candidates(subject: String, agent: String, scope: String) -> [(grant: Grant, policy: String)] {
        guard let pair = existingPair(subject, agent), let scopeNumber = names.number(of: scope), let held = grants[pair] else {
            return []
        }
        var found: [(grant: Grant, policy: String)] = []
        for packed in held where packed.scope == scopeNumber {
            let grant = Grant(subject: subject, agent: agent, scope: scope, resource: names.held(packed.resource))
            found.append((grant: grant, policy: names.held(packed.policy)))
        }
        return found
    }

    /// Every grant of `subject` through `agent`, with its policy.
    func grants(subject: String, agent: String) -> [(grant: Grant, policy: String)] {
        guard let pair = existingPair(subject, agent), let held = grants[pair] else { return [] }
        return held.map { packed in
            let grant = Grant(subject: subject, agent: agent, scope: names.held(packed.scope), resource: names.held(packed.resource))
            return (grant: grant, policy: names.held(packed.policy))
        }
    }

    /// The number of distinct names held (subjects, agents, scopes, resources, policies).
    var nameCount: Int { names.count }

    private mutating func remove(from pair: UInt64, where matches: (Packed) -> Bool) -> Int {
        guard var held = grants[pair] else { return 0 }
        let before = held.count
        held.removeAll(where: matches)
        let removed = before - held.count
        guard removed > 0 else { return 0 }
        count -= removed
        grants[pair] = held.isEmpty ? nil : held
        return removed
    }

    private func existingPair(_ subject: String, _ agent: String) -> UInt64? {
        guard let subject = names.number(of: subject), let agent = names.number(of: agent) else { return nil }
        return Self.pair(subject, agent)
    }

    private static func pair(_ subject: UInt32, _ agent: UInt32) -> UInt64 {
        UInt64(subject) << 32 | UInt64(agent)
    }
}

extension NumberedNames<UInt32> {
    /// The name of a number a held grant refers to: the table never forgets a name.
    fileprivate func held(_ number: UInt32) -> String {
        guard let name = self[number] else { preconditionFailure("the grant table forgot name \(number); it forgets none") }
        return name
    }
}
