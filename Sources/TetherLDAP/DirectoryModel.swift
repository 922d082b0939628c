import TetherCore

/// A group's number within one ``DirectoryModel``.
typealias GroupOrdinal = Int32

/// Tether's in-memory copy of the directory's people and groups, with the indexes that turn
/// an entry into identity facts: transitive groups (by cn and DN) and the manager's key.
///
/// Every change returns the people whose facts it may change, so a group edit re-derives
/// exactly its members (before and after, nested groups included).
public struct DirectoryModel: Sendable {
    /// Whether membership is followed through nested groups.
    public let nested: Bool
    /// Groups by key (entryUUID, else normalised DN).
    public private(set) var groups: [String: DirectoryGroup] = [:]

    // People live in slots: the dictionaries map to small integers, so growing them to a
    // hundred thousand entries moves keys and integers, not whole records.
    private var people: [DirectoryUser?] = []
    private var freeSlots: [Int] = []
    /// Entry key → slot of the person.
    private var byKey = NameIndex()
    /// Normalised DN → the slot of the person with that DN, and the groups that list it.
    private var byDN = NameIndex()
    /// The group names of each slot's person, worked out as they were loaded by a complete
    /// read; forgotten as soon as any group changes.
    private var loadedNames: [Set<String>?] = []
    private var loadedNamesValid = true
    private var namesByDirectGroups: [[GroupOrdinal]: Set<String>] = [:]
    private var namesByGroupPair: [UInt64: Set<String>] = [:]
    private var namesByGroup: [Set<String>?] = []

    // Indexes hold short arrays rather than sets: a person is in a handful of groups, and
    // appending is much cheaper than hashing when a whole directory is loaded.
    private var userByName: [String: [String]] = [:]
    private var groupByDN: [String: String] = [:]
    /// Lowercased memberUid → keys of the posixGroups that list it.
    private var groupsByMemberUid: [String: [GroupOrdinal]] = [:]
    /// Groups are numbered as they arrive, so memberships are lists of small integers.
    private var groupKeys = NumberedNames<GroupOrdinal>()
    /// Normalised manager DN → keys of the people who name it; built on first need (a
    /// change after a complete read), since a complete read never asks.
    private var reportsByManagerDN: [String: [String]] = [:]
    private var reportsIndexed = false
    /// Whether ``userByName`` is kept: only once a posixGroup lists members by memberUid.
    private var namesIndexed = false
    /// externalId → keys of the people who carry it; built on first need (a syncrepl
    /// message naming a person by another key), since a complete read never asks.
    private var keysByExternalId: [String: [String]] = [:]
    private var externalIdsIndexed = false
    /// Old DN → the person renamed from it, for ``carryRenames(since:)``.
    private var recentRenames: [String: RecentRename] = [:]

    struct RecentRename: Sendable {
        var key: String
        /// Complete reads this rename is still carried across.
        var reads = 2
    }

    /// Group key → the group and every group containing it; dropped on any group change.
    private var closures: [GroupOrdinal: Set<GroupOrdinal>] = [:]

    /// Creates an empty model.
    public init(nested: Bool) { self.nested = nested }

    /// Creates a model from a complete read.
    public init(nested: Bool, users: some Collection<DirectoryUser>, groups: some Collection<DirectoryGroup>) {
        self.nested = nested
        // Sized once: growing a dictionary of 100,000 people rehashes every key many times.
        reserveUsers(users.count)
        self.groups.reserveCapacity(groups.count)
        groupByDN.reserveCapacity(groups.count)
        byDN.reserve(max(users.count, groups.reduce(0) { $0 + $1.memberDNs.count } / 2) + groups.count)
        for group in groups { _ = upsertGroup(group, collectAffected: false) }
        prepareForPeople()
        for user in users { _ = upsertUser(user, collectAffected: false) }
    }

    /// Whether the model holds neither people nor groups (nothing read yet).
    public var isEmpty: Bool { byKey.count == 0 && groups.isEmpty }

    /// How many people the model holds.
    public var userCount: Int { byKey.count }

    /// The person with `key`, if any.
    public func user(_ key: String) -> DirectoryUser? {
        byKey.slot(of: key).flatMap { people[$0] }
    }

    /// The person whose DN, normalised, is `normalizedDN`, if any.
    public func user(normalizedDN: String) -> DirectoryUser? {
        byDN.slot(of: normalizedDN).flatMap { people[$0] }
    }

    /// Every person, in no particular order.
    public var allUsers: [DirectoryUser] { people.compactMap { $0 } }

    /// The keys of every person.
    public var userKeys: [String] {
        var result: [String] = []
        result.reserveCapacity(byKey.count)
        byKey.forEach { key, _ in result.append(key) }
        return result
    }

    /// Makes room for `total` people at once, so a large read does not rehash as it grows.
    public mutating func reserveUsers(_ total: Int) {
        guard total > byKey.capacity else { return }
        byKey.reserve(total)
        byDN.reserve(total + groups.count)
        people.reserveCapacity(total)
        loadedNames.reserveCapacity(total)
    }

    /// Call once the groups of a complete read are in, before its people: group closures
    /// are computed once, and each person's group names as they are loaded.
    mutating func prepareForPeople() {
        warmClosures()
        loadedNamesValid = true
    }

    // MARK: Changes

    /// Adds or replaces a person; returns the keys of the people whose facts may change
    /// (the person, and those who name their old or new DN as manager).
    @discardableResult
    public mutating func upsertUser(_ user: DirectoryUser) -> Set<String> {
        upsertUser(user, collectAffected: true)
    }

    mutating func upsertUser(_ user: DirectoryUser, collectAffected: Bool) -> Set<String> {
        var user = user
        // A manager's DN is named by each of their reports: they share the manager's own copy.
        if let managerDN = user.managerDN, let slot = byDN.slot(of: managerDN), let manager = people[slot] {
            user.managerDN = manager.normalizedDN
        }
        if collectAffected { indexReports() }
        var affected: Set<String> = [user.key]
        let slot: Int
        let old: DirectoryUser?
        // One lookup for a new key: claim a slot, unless the key has one.
        let candidate = Int32(freeSlots.last ?? people.count)
        let existing = byKey.update(user.key) { entry in
            defer { if entry.slot < 0 { entry.slot = candidate } }
            return entry.slot >= 0 ? Int(entry.slot) : nil
        }
        if let existing {
            slot = existing
            old = people[slot]
            people[slot] = user
        } else {
            slot = Int(candidate)
            if slot == people.count {
                people.append(user)
                loadedNames.append(nil)
            } else {
                freeSlots.removeLast()
                people[slot] = user
            }
            old = nil
        }
        if let old {
            unindex(old)
            if old.normalizedDN != user.normalizedDN {
                carryReferences(from: old.normalizedDN, to: user.normalizedDN)
                recentRenames[old.normalizedDN] = RecentRename(key: user.key)
            }
        }
        // One lookup of the DN: the person's slot goes in, the groups that list them come out.
        let listing = byDN.update(user.normalizedDN) { entry in
            entry.slot = Int32(slot)
            return entry.groups
        }
        loadedNames[slot] =
            !collectAffected && loadedNamesValid ? rememberedGroupNames(direct: directGroups(listing: listing, user: user)) : nil
        if namesIndexed, let name = user.userName?.lowercased() { userByName[name, default: []].append(user.key) }
        if reportsIndexed, let manager = user.managerDN { reportsByManagerDN[manager, default: []].append(user.key) }
        if externalIdsIndexed { keysByExternalId[user.externalId, default: []].append(user.key) }
        if collectAffected, old?.normalizedDN != user.normalizedDN || old?.externalId != user.externalId {
            affected.formUnion(reportsByManagerDN[user.normalizedDN] ?? [])
            if let old { affected.formUnion(reportsByManagerDN[old.normalizedDN] ?? []) }
        }
        return affected
    }

    /// Removes a person; returns them and the keys of the people who named them as manager.
    public mutating func removeUser(key: String) -> (removed: DirectoryUser?, affected: Set<String>) {
        indexReports()
        let removed = byKey.update(key) { entry in
            defer { entry.slot = -1 }
            return entry.slot >= 0 ? Int(entry.slot) : nil
        }
        guard let slot = removed, let old = people[slot] else { return (nil, []) }
        people[slot] = nil
        loadedNames[slot] = nil
        freeSlots.append(slot)
        unindex(old)
        return (old, Set(reportsByManagerDN[old.normalizedDN] ?? []))
    }

    /// Adds or replaces a group; returns the keys of its transitive members before and after.
    @discardableResult
    public mutating func upsertGroup(_ group: DirectoryGroup) -> Set<String> {
        upsertGroup(group, collectAffected: true)
    }

    private mutating func upsertGroup(_ group: DirectoryGroup, collectAffected: Bool) -> Set<String> {
        forgetLoadedNames()
        var affected = collectAffected ? members(ofGroup: group.key) : []
        if let old = groups[group.key] {
            unindex(old)
            if old.normalizedDN != group.normalizedDN { carryReferences(from: old.normalizedDN, to: group.normalizedDN) }
        }
        groups[group.key] = group
        groupByDN[group.normalizedDN] = group.key
        let ordinal = ordinal(of: group.key)
        for dn in group.memberDNs { byDN.update(dn) { $0.groups.append(ordinal) } }
        if !group.memberUids.isEmpty { indexNames() }
        for uid in group.memberUids { groupsByMemberUid[uid, default: []].append(ordinal) }
        closures.removeAll(keepingCapacity: true)
        if collectAffected { affected.formUnion(members(ofGroup: group.key)) }
        return affected
    }

    /// Removes a group; returns the keys of its former transitive members.
    public mutating func removeGroup(key: String) -> Set<String> {
        guard groups[key] != nil else { return [] }
        forgetLoadedNames()
        let affected = members(ofGroup: key)
        if let old = groups.removeValue(forKey: key) { unindex(old) }
        groupKeys.forget(key)
        closures.removeAll(keepingCapacity: true)
        return affected
    }

    /// Replaces everything with a complete read.
    public mutating func replaceAll(users: some Collection<DirectoryUser>, groups: some Collection<DirectoryGroup>) {
        self = DirectoryModel(nested: nested, users: users, groups: groups)
    }

    /// After a complete read: a person renamed since `previous`, or shortly before it, while
    /// groups or reports still name the old DN (the directory's referential integrity has
    /// not caught up, or the read fell between the rename and the group update), keeps those
    /// references. A rename is remembered for two complete reads; a directory that never
    /// updates its groups then shows its dangling DN.
    public mutating func carryRenames(since previous: DirectoryModel) {
        var pending = previous.recentRenames.compactMapValues { rename in
            rename.reads > 1 ? RecentRename(key: rename.key, reads: rename.reads - 1) : nil
        }
        forEachUser { _, user in
            guard let before = previous.user(user.key), before.normalizedDN != user.normalizedDN else { return }
            pending[before.normalizedDN] = RecentRename(key: user.key)
        }
        recentRenames = [:]
        for (oldDN, rename) in pending {
            guard byDN.slot(of: oldDN) == nil, let user = user(rename.key), user.normalizedDN != oldDN else { continue }
            recentRenames[oldDN] = rename
            if byDN[oldDN]?.groups.isEmpty == false || reportsIndexed && reportsByManagerDN[oldDN] != nil {
                carryReferences(from: oldDN, to: user.normalizedDN)
            } else if !reportsIndexed, people.contains(where: { $0?.managerDN == oldDN }) {
                carryReferences(from: oldDN, to: user.normalizedDN)
            }
        }
    }

    /// Whether `dn` (normalised) names a person or a group the model holds.
    func knows(dn: String) -> Bool {
        byDN.slot(of: dn) != nil || groupByDN[dn] != nil
    }

    /// After a rename or move, points the groups and reports that named the old DN at the
    /// new one, as the directory's referential integrity will shortly do itself; until it
    /// does, the renamed entry keeps its memberships instead of losing them for a moment.
    private mutating func carryReferences(from oldDN: String, to newDN: String) {
        indexReports()
        let listing = byDN.update(oldDN) { entry in
            defer { entry.groups = [] }
            return entry.groups
        }
        for ordinal in listing {
            guard let key = groupKeys[ordinal], var group = groups[key] else { continue }
            group.memberDNs = group.memberDNs.map { $0 == oldDN ? newDN : $0 }
            groups[key] = group
            byDN.update(newDN) { $0.groups.append(ordinal) }
        }
        for key in reportsByManagerDN.removeValue(forKey: oldDN) ?? [] {
            guard let slot = byKey.slot(of: key), var report = people[slot] else { continue }
            report.managerDN = newDN
            people[slot] = report
            reportsByManagerDN[newDN, default: []].append(key)
        }
        closures.removeAll(keepingCapacity: true)
        forgetLoadedNames()
    }

    private mutating func unindex(_ user: DirectoryUser) {
        if let slot = byDN.slot(of: user.normalizedDN), people[slot]?.key == user.key || people[slot] == nil {
            byDN.update(user.normalizedDN) { $0.slot = -1 }
        }
        if namesIndexed, let name = user.userName?.lowercased() { userByName[name]?.removeAll { $0 == user.key } }
        if reportsIndexed, let manager = user.managerDN { reportsByManagerDN[manager]?.removeAll { $0 == user.key } }
        if externalIdsIndexed {
            keysByExternalId[user.externalId]?.removeAll { $0 == user.key }
            if keysByExternalId[user.externalId]?.isEmpty == true { keysByExternalId[user.externalId] = nil }
        }
    }

    private mutating func unindex(_ group: DirectoryGroup) {
        if groupByDN[group.normalizedDN] == group.key { groupByDN[group.normalizedDN] = nil }
        guard let ordinal = groupKeys.number(of: group.key) else { return }
        for dn in group.memberDNs where byDN[dn] != nil { byDN.update(dn) { $0.groups.removeAll { $0 == ordinal } } }
        for uid in group.memberUids { groupsByMemberUid[uid]?.removeAll { $0 == ordinal } }
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
            for dn in group.memberDNs {
                if let slot = byDN.slot(of: dn), let key = self.people[slot]?.key { people.insert(key) }
            }
            for uid in group.memberUids { people.formUnion(userByName[uid] ?? []) }
        }
        return people
    }

    private mutating func ordinal(of key: String) -> GroupOrdinal { groupKeys.number(key) }

    private func group(_ ordinal: GroupOrdinal) -> DirectoryGroup? {
        groupKeys[ordinal].flatMap { groups[$0] }
    }

    /// The keys of the groups that list the person themselves (by DN, or by memberUid).
    func directGroups(ofUser user: DirectoryUser) -> [GroupOrdinal] {
        directGroups(listing: byDN[user.normalizedDN]?.groups ?? [], user: user)
    }

    /// `listing` (the groups that list the person's DN) and the posixGroups that list their name.
    private func directGroups(listing: [GroupOrdinal], user: DirectoryUser) -> [GroupOrdinal] {
        var direct = listing
        if !groupsByMemberUid.isEmpty, let name = user.userName?.lowercased(), let posix = groupsByMemberUid[name] {
            direct += posix
        }
        return direct
    }

    private func groupOrdinals(direct: [GroupOrdinal]) -> Set<GroupOrdinal> {
        guard nested, !direct.isEmpty else { return Set(direct) }
        var all: Set<GroupOrdinal> = []
        for ordinal in direct { all.formUnion(closure(of: ordinal)) }
        return all
    }

    private func closure(of ordinal: GroupOrdinal) -> Set<GroupOrdinal> {
        if let cached = closures[ordinal] { return cached }
        return GroupExpander.ancestors(of: [ordinal]) { child in
            guard let dn = group(child)?.normalizedDN else { return [] }
            return byDN[dn]?.groups ?? []
        }
    }

    /// The identity facts of everyone, with each entry's own version: the mapping of a
    /// complete read.
    public mutating func allFacts() -> [IdentityFacts] {
        warmClosures()
        var result: [IdentityFacts] = []
        result.reserveCapacity(userCount)
        forEachUser { slot, user in result.append(facts(user, slot: slot)) }
        return result
    }

    /// Calls `body` with every person and their slot.
    func forEachUser(_ body: (Int, DirectoryUser) -> Void) {
        for slot in people.indices {
            if let user = people[slot] { body(slot, user) }
        }
    }

    private mutating func forgetLoadedNames() {
        guard loadedNamesValid else { return }
        loadedNamesValid = false
        namesByDirectGroups = [:]
        namesByGroupPair = [:]
        namesByGroup = []
        for slot in loadedNames.indices { loadedNames[slot] = nil }
    }

    private mutating func indexReports() {
        guard !reportsIndexed else { return }
        reportsIndexed = true
        forEachUser { _, user in
            if let manager = user.managerDN { reportsByManagerDN[manager, default: []].append(user.key) }
        }
    }

    private mutating func indexNames() {
        guard !namesIndexed else { return }
        namesIndexed = true
        forEachUser { _, user in
            if let name = user.userName?.lowercased() { userByName[name, default: []].append(user.key) }
        }
    }

    /// Fills the closure cache for every group, so that mapping many people is fast.
    mutating func warmClosures() {
        guard nested else { return }
        for key in groups.keys {
            guard let ordinal = groupKeys.number(of: key), closures[ordinal] == nil else { continue }
            closures[ordinal] = closure(of: ordinal)
        }
    }

    // MARK: Facts

    /// The identity facts of the person with `key`, with the entry's own version.
    public func facts(forUser key: String) -> IdentityFacts? {
        byKey.slot(of: key).flatMap { slot in people[slot].map { facts($0, slot: slot) } }
    }

    /// The identity facts of `user`: transitive groups by cn and DN, manager by externalId.
    public func facts(_ user: DirectoryUser) -> IdentityFacts {
        facts(user, slot: nil)
    }

    /// `user`'s facts, using the group names worked out when the slot was loaded, if still valid.
    func facts(_ user: DirectoryUser, slot: Int?) -> IdentityFacts {
        let names = slot.flatMap { loadedNamesValid ? loadedNames[$0] : nil } ?? groupNames(ofUser: user)
        let manager = user.managerDN.flatMap { byDN.slot(of: $0) }.flatMap { people[$0]?.externalId }
        return IdentityFacts(
            externalId: user.externalId, userName: user.userName, email: user.email, displayName: user.displayName,
            employeeNumber: user.employeeNumber, department: user.department, title: user.title, manager: manager,
            status: user.suspended ? .suspended : .active, groups: names, attributes: user.attributes,
            version: user.version)
    }

    /// The cn and DN of every group `user` belongs to, transitively when nested.
    private func groupNames(ofUser user: DirectoryUser) -> Set<String> {
        var direct = directGroups(ofUser: user)
        if direct.count > 1 { direct.sort() }
        if let known = namesByDirectGroups[direct] { return known }
        var names: Set<String> = []
        for ordinal in groupOrdinals(direct: direct) {
            guard let group = group(ordinal) else { continue }
            names.insert(group.dn)
            if let cn = group.cn { names.insert(cn) }
        }
        return names
    }

    /// `groupNames(ofUser:)`, remembered per set of direct groups (many people share one)
    /// while a complete read loads.
    private mutating func rememberedGroupNames(direct: [GroupOrdinal]) -> Set<String> {
        // Not sorted: during a complete read every person's direct groups are listed in the
        // order the groups were loaded, so equal sets are equal arrays; a miss only costs time.
        switch direct.count {
        case 0: return []
        case 1: return rememberedGroupNames(of: direct[0])
        case 2:
            // Most people are in two groups (a department and a team): a pair is one integer.
            let pair = UInt64(UInt32(bitPattern: direct[0])) << 32 | UInt64(UInt32(bitPattern: direct[1]))
            if let known = namesByGroupPair[pair] { return known }
            var names = rememberedGroupNames(of: direct[0])
            names.formUnion(rememberedGroupNames(of: direct[1]))
            namesByGroupPair[pair] = names
            return names
        default:
            if let known = namesByDirectGroups[direct] { return known }
            // The union of each group's names, each remembered: no group is looked up again.
            var names = rememberedGroupNames(of: direct[0])
            for ordinal in direct.dropFirst() { names.formUnion(rememberedGroupNames(of: ordinal)) }
            namesByDirectGroups[direct] = names
            return names
        }
    }

    /// The names of the group numbered `ordinal` and of the groups containing it, remembered
    /// by ordinal while a complete read loads.
    private mutating func rememberedGroupNames(of ordinal: GroupOrdinal) -> Set<String> {
        let index = Int(ordinal)
        if index < namesByGroup.count, let known = namesByGroup[index] { return known }
        var names: Set<String> = []
        for ordinal in groupOrdinals(direct: [ordinal]) {
            guard let group = group(ordinal) else { continue }
            names.insert(group.dn)
            if let cn = group.cn { names.insert(cn) }
        }
        if index >= namesByGroup.count { namesByGroup += Array(repeating: nil, count: index + 1 - namesByGroup.count) }
        namesByGroup[index] = names
        return names
    }

    /// The key of the person whose externalId is `externalId`.
    public mutating func userKey(externalId: String) -> String? {
        if user(externalId)?.externalId == externalId { return externalId }
        if !externalIdsIndexed {
            externalIdsIndexed = true
            forEachUser { _, user in keysByExternalId[user.externalId, default: []].append(user.key) }
        }
        return keysByExternalId[externalId]?.first
    }
}
