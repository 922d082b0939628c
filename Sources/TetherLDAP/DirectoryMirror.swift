import Foundation
import TetherCore

/// The directory as Tether last read it, next to the facts the engine holds from it.
///
/// It decides which people a change really changes (their facts differ from what was
/// applied) and keeps versions monotonic: a person's facts can change through a group edit
/// without their own entry changing, so their version becomes the newest of their entry's,
/// the triggering change's and the one applied before. An older version would be stale.
struct DirectoryMirror {
    var model: DirectoryModel
    /// The facts the engine holds from this source, in brief, by externalId.
    var applied: [String: AppliedFacts] { didSet { appliedByName = nil } }
    /// The externalIds of ``applied`` by lower-case userName and by email: built when an
    /// unreadable entry is first recognised by them, so that many unreadable entries (an
    /// attribute gone from every entry) cost one pass over the applied facts, not one each.
    private var appliedByName: (userNames: [String: [String]], emails: [String: [String]])?
    /// People entries in the directory that cannot be read or mapped, by entry key. The
    /// person each one was, when known, keeps their state: a read is incomplete for them.
    var unreadable: [String: UnreadableEntry] = [:]

    init(nested: Bool, applied: [String: AppliedFacts] = [:]) {
        self.model = DirectoryModel(nested: nested)
        self.applied = applied
    }

    /// The people applied before whose entry is there but unreadable: a complete read keeps
    /// those the model lacks as the engine holds them (``snapshotFacts(keeping:)``).
    func unreadablePeople() -> [String] {
        unreadable.values.compactMap { entry in entry.externalId.flatMap { applied[$0] != nil ? $0 : nil } }
    }

    /// Every person's facts for a complete read, versions kept monotonic; unchanged people
    /// get exactly the facts applied before, so the engine sees nothing to do for them.
    /// - Parameter kept: the facts the engine holds for ``unreadablePeople()``, by externalId.
    mutating func snapshotFacts(keeping kept: [String: IdentityFacts] = [:]) -> [IdentityFacts] {
        model.warmClosures()
        var result: [IdentityFacts] = []
        result.reserveCapacity(model.userCount)
        model.forEachUser { slot, user in
            var facts = model.facts(user, slot: slot)
            // Never older than what was applied: unchanged facts are exactly those applied.
            if let before = applied[user.externalId] { facts.version = max(facts.version, before.version) }
            result.append(facts)
        }
        guard !unreadable.isEmpty else { return result }
        // People whose entry is there but unreadable, and not in the model: as applied before.
        var listed = Set(result.compactMap(\.externalId))
        for entry in unreadable.values.sorted(by: { $0.key < $1.key }) {
            guard let id = entry.externalId, !listed.contains(id), applied[id] != nil, let before = kept[id] else { continue }
            result.append(before)
            listed.insert(id)
        }
        return result
    }

    /// Takes a complete read as the model. A person whose entry is unreadable in it keeps
    /// the entry last read, when there is one; otherwise ``snapshotFacts()`` keeps the facts
    /// applied before.
    mutating func adopt(_ read: DirectoryModel, unreadable entries: [UnreadableEntry]) {
        var next = read
        next.carryRenames(since: model)
        var kept: [String: UnreadableEntry] = [:]
        for entry in entries {
            let entry = attributed(entry)
            kept[entry.key] = entry
            guard let id = entry.externalId, next.userKey(externalId: id) == nil,
                let previous = model.user(entry.key) ?? model.user(normalizedDN: entry.normalizedDN),
                previous.externalId == id
            else { continue }
            next.upsertUser(previous)
        }
        model = next
        unreadable = kept
    }

    /// Notes a changed entry that cannot be mapped; the model keeps the entry as it was.
    mutating func noteUnreadable(_ entry: UnreadableEntry) {
        unreadable[entry.key] = attributed(entry)
    }

    /// `entry` with the externalId of the person it was: the model's person with the same
    /// key or DN, else the one person applied with the same userName, else with the same email.
    mutating func attributed(_ entry: UnreadableEntry) -> UnreadableEntry {
        var entry = entry
        if let user = model.user(entry.key) ?? model.user(normalizedDN: entry.normalizedDN) {
            entry.externalId = user.externalId
            return entry
        }
        if let known = unreadable[entry.key]?.externalId {
            entry.externalId = known
            return entry
        }
        let byName = appliedByName ?? indexAppliedByName()
        for (value, index) in [(entry.userName, byName.userNames), (entry.email, byName.emails)] {
            guard let value = value?.lowercased(), let matches = index[value] else { continue }
            if matches.count == 1 {
                entry.externalId = matches[0]
                return entry
            }
        }
        return entry
    }

    private mutating func indexAppliedByName() -> (userNames: [String: [String]], emails: [String: [String]]) {
        var index: (userNames: [String: [String]], emails: [String: [String]]) = ([:], [:])
        for (id, facts) in applied {
            if let userName = facts.userName { index.userNames[userName, default: []].append(id) }
            if let email = facts.email { index.emails[email, default: []].append(id) }
        }
        appliedByName = index
        return index
    }

    /// The facts of the people with `keys` that differ from what was applied.
    ///
    /// - Parameter trigger: the version of the change that may have changed them (a
    ///   group's entryCSN, a deletion's cookie CSN).
    func changedFacts(forUsers keys: Set<String>, trigger: String, now: Date) -> [IdentityFacts] {
        var changed: [IdentityFacts] = []
        for key in keys.sorted() {
            guard let user = model.user(key) else { continue }
            var facts = model.facts(user)
            let before = applied[user.externalId]
            if let before, before.matches(facts) { continue }
            let floor = before?.version ?? ""
            facts.version = max(facts.version, trigger, floor)
            if let before, facts.version <= before.version {
                // Same version, different facts: the engine would take it for a duplicate.
                facts.version = max(before.version + "+", Timestamp.version(now))
            }
            changed.append(facts)
        }
        return changed
    }

    mutating func recordApplied(_ facts: IdentityFacts) {
        guard let key = facts.externalId else { return }
        applied[key] = AppliedFacts(facts)
    }
}

/// What the engine holds from the directory for one person, in brief: whether a read changes
/// them, the version to stay above, and what tells whose an unreadable entry was. A
/// hundred thousand people's whole facts (their groups and attributes) are not kept twice.
struct AppliedFacts: Sendable {
    /// The hash of the facts, their version and status left out. Equal facts have equal
    /// hashes; a change that keeps it is a 64-bit collision of a hash seeded per process.
    let digest: Int
    var status: IdentityStatus?
    let version: String
    /// In lower case.
    let userName: String?
    let email: String?

    init(_ facts: IdentityFacts) {
        digest = Self.digest(facts)
        status = facts.status
        version = facts.version
        userName = facts.userName?.lowercased()
        email = facts.email?.lowercased()
    }

    /// Whether `facts` are these, whatever their version.
    func matches(_ facts: IdentityFacts) -> Bool { facts.status == status && Self.digest(facts) == digest }

    private static func digest(_ facts: IdentityFacts) -> Int {
        var facts = facts
        facts.version = ""
        facts.status = nil
        return facts.hashValue
    }
}
