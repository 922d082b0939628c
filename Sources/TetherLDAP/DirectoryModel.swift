import TetherCore

/// Tether's in-memory copy of the directory's people and groups, with the indexes that turn
/// an entry into identity facts: transitive groups (by cn and DN) and the manager's key.
///
/// Every change returns the people whose facts it may change, so a group edit re-derives
/// exactly its members (before and after, nested groups included).
public struct DirectoryModel: Sendable {
    /// Whether membership is followed through nested groups.
    public let nested: Bool
    public private(set) var users: [String: DirectoryUser] = [:]
    public private(set) var groups: [String: DirectoryGroup] = [:]

    private var userByDN: [String: String] = [:]
    private var userByName: [String: Set<String>] = [:]
    private var groupByDN: [String: String] = [:]
    /// Normalised member DN → keys of the groups that list it.
    private var groupsByMemberDN: [String: Set<String>] = [:]
    /// Lowercased memberUid → keys of the posixGroups that list it.
    private var groupsByMemberUid: [String: Set<String>] = [:]
    /// Normalised manager DN → keys of the people who name it.
    private var reportsByManagerDN: [String: Set<String>] = [:]
    /// Group key → the group and every group containing it; dropped on any group change.
    private var closures: [String: Set<String>] = [:]

    /// Creates an empty model.
    public init(nested: Bool) { self.nested = nested }

    /// Creates a model from a complete read.
    public init(nested: Bool, users: some Sequence<DirectoryUser>, groups: some Sequence<DirectoryGroup>) {
        self.nested = nested
        for group in groups { _ = upsertGroup(group, collectAffected: false) }
        for user in users { _ = upsertUser(user, collectAffected: false) }
    }

    public var isEmpty: Bool { users.isEmpty && groups.isEmpty }

    // MARK: Changes

    /// Adds or replaces a person; returns the keys of the people whose facts may change
    /// (the person, and those who name their old or new DN as manager).
    @discardableResult
    public mutating func upsertUser(_ user: DirectoryUser) -> Set<String> {
        upsertUser(user, collectAffected: true)
    }

    private mutating func upsertUser(_ user: DirectoryUser, collectAffected: Bool) -> Set<String> {
        var affected: Set<String> = [user.key]
        let old = users[user.key]
        if let old {
            unindex(old)
            if old.normalizedDN != user.normalizedDN { carryReferences(from: old.normalizedDN, to: user.normalizedDN) }
        }
        users[user.key] = user
        userByDN[user.normalizedDN] = user.key
        if let name = user.userName?.lowercased() { userByName[name, default: []].insert(user.key) }
        if let manager = user.managerDN { reportsByManagerDN[manager, default: []].insert(user.key) }
        if collectAffected, old?.normalizedDN != user.normalizedDN || old?.externalId != user.externalId {
            affected.formUnion(reportsByManagerDN[user.normalizedDN] ?? [])
            if let old { affected.formUnion(reportsByManagerDN[old.normalizedDN] ?? []) }
        }
        return affected
    }

    /// Removes a person; returns them and the keys of the people who named them as manager.
    public mutating func removeUser(key: String) -> (removed: DirectoryUser?, affected: Set<String>) {
        guard let old = users.removeValue(forKey: key) else { return (nil, []) }
        unindex(old)
        return (old, reportsByManagerDN[old.normalizedDN] ?? [])
    }

    /// Adds or replaces a group; returns the keys of its transitive members before and after.
    @discardableResult
    public mutating func upsertGroup(_ group: DirectoryGroup) -> Set<String> {
        upsertGroup(group, collectAffected: true)
    }

    private mutating func upsertGroup(_ group: DirectoryGroup, collectAffected: Bool) -> Set<String> {
        var affected = collectAffected ? members(ofGroup: group.key) : []
        if let old = groups[group.key] {
            unindex(old)
            if old.normalizedDN != group.normalizedDN { carryReferences(from: old.normalizedDN, to: group.normalizedDN) }
        }
        groups[group.key] = group
        groupByDN[group.normalizedDN] = group.key
        for dn in group.memberDNs { groupsByMemberDN[dn, default: []].insert(group.key) }
        for uid in group.memberUids { groupsByMemberUid[uid, default: []].insert(group.key) }
        closures.removeAll(keepingCapacity: true)
        if collectAffected { affected.formUnion(members(ofGroup: group.key)) }
        return affected
    }

    /// Removes a group; returns the keys of its former transitive members.
    public mutating func removeGroup(key: String) -> Set<String> {
        guard groups[key] != nil else { return [] }
        let affected = members(ofGroup: key)
        if let old = groups.removeValue(forKey: key) { unindex(old) }
        closures.removeAll(keepingCapacity: true)
        return affected
    }

    /// Replaces everything with a complete read.
    public mutating func replaceAll(users: some Sequence<DirectoryUser>, groups: some Sequence<DirectoryGroup>) {
        self = DirectoryModel(nested: nested, users: users, groups: groups)
    }

    /// After a rename or move, points the groups and reports that named the old DN at the
    /// new one, as the directory's referential integrity will shortly do itself; until it
    /// does, the renamed entry keeps its memberships instead of losing them for a moment.
    private mutating func carryReferences(from oldDN: String, to newDN: String) {
        for key in groupsByMemberDN.removeValue(forKey: oldDN) ?? [] {
            guard var group = groups[key] else { continue }
            group.memberDNs = group.memberDNs.map { $0 == oldDN ? newDN : $0 }
            groups[key] = group
            groupsByMemberDN[newDN, default: []].insert(key)
        }
        for key in reportsByManagerDN.removeValue(forKey: oldDN) ?? [] {
            guard var report = users[key] else { continue }
            report.managerDN = newDN
            users[key] = report
            reportsByManagerDN[newDN, default: []].insert(key)
        }
        closures.removeAll(keepingCapacity: true)
    }

    private mutating func unindex(_ user: DirectoryUser) {
        if userByDN[user.normalizedDN] == user.key { userByDN[user.normalizedDN] = nil }
        if let name = user.userName?.lowercased() { userByName[name]?.remove(user.key) }
        if let manager = user.managerDN { reportsByManagerDN[manager]?.remove(user.key) }
    }

    private mutating func unindex(_ group: DirectoryGroup) {
        if groupByDN[group.normalizedDN] == group.key { groupByDN[group.normalizedDN] = nil }
        for dn in group.memberDNs { groupsByMemberDN[dn]?.remove(group.key) }
        for uid in group.memberUids { groupsByMemberUid[uid]?.remove(group.key) }
    }

    // MARK: Membership

    /// The keys of every person who is a member of the group, directly or through nested groups.
    public func members(ofGroup key: String) -> Set<String> {
        guard groups[key] != nil else { return [] }
        let nestedGroups =
            nested
            ? GroupExpander.descendants(of: key) { groupKey in
                groups[groupKey]?.memberDNs.compactMap { groupByDN[$0] } ?? []
            } : [key]
        var people: Set<String> = []
        for groupKey in nestedGroups {
            guard let group = groups[groupKey] else { continue }
            for dn in group.memberDNs { if let user = userByDN[dn] { people.insert(user) } }
            for uid in group.memberUids { people.formUnion(userByName[uid] ?? []) }
        }
        return people
    }

    /// The keys of the groups a person belongs to, directly or (when nested) transitively.
    public func groupKeys(ofUser user: DirectoryUser) -> Set<String> {
        var direct = groupsByMemberDN[user.normalizedDN] ?? []
        if let name = user.userName?.lowercased(), let posix = groupsByMemberUid[name] { direct.formUnion(posix) }
        guard nested, !direct.isEmpty else { return direct }
        var all: Set<String> = []
        for key in direct { all.formUnion(closure(of: key)) }
        return all
    }

    private func closure(of key: String) -> Set<String> {
        if let cached = closures[key] { return cached }
        return GroupExpander.ancestors(of: [key]) { groupKey in
            guard let dn = groups[groupKey]?.normalizedDN else { return [] }
            return Array(groupsByMemberDN[dn] ?? [])
        }
    }

    /// The identity facts of everyone, with each entry's own version: the mapping of a
    /// complete read.
    public mutating func allFacts() -> [IdentityFacts] {
        warmClosures()
        return users.values.map(facts)
    }

    /// Fills the closure cache for every group, so that mapping many people is fast.
    mutating func warmClosures() {
        guard nested else { return }
        for key in groups.keys where closures[key] == nil {
            closures[key] = closure(of: key)
        }
    }

    // MARK: Facts

    /// The identity facts of the person with `key`, with the entry's own version.
    public func facts(forUser key: String) -> IdentityFacts? {
        users[key].map(facts)
    }

    /// The identity facts of `user`: transitive groups by cn and DN, manager by externalId.
    public func facts(_ user: DirectoryUser) -> IdentityFacts {
        var names: Set<String> = []
        for key in groupKeys(ofUser: user) {
            guard let group = groups[key] else { continue }
            names.insert(group.dn)
            if let cn = group.cn { names.insert(cn) }
        }
        let manager = user.managerDN.flatMap { userByDN[$0] }.flatMap { users[$0]?.externalId }
        return IdentityFacts(
            externalId: user.externalId, userName: user.userName, email: user.email, displayName: user.displayName,
            employeeNumber: user.employeeNumber, department: user.department, title: user.title, manager: manager,
            status: user.suspended ? .suspended : .active, groups: names, attributes: user.attributes,
            version: user.version)
    }

    /// The key of the person whose externalId is `externalId`.
    public func userKey(externalId: String) -> String? {
        if users[externalId]?.externalId == externalId { return externalId }
        return users.first { $0.value.externalId == externalId }?.key
    }
}
