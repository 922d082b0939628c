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
    /// The facts the engine holds from this source, by externalId.
    var applied: [String: IdentityFacts]

    init(nested: Bool, applied: [String: IdentityFacts] = [:]) {
        self.model = DirectoryModel(nested: nested)
        self.applied = applied
    }

    /// Every person's facts for a complete read, versions kept monotonic; unchanged people
    /// get exactly the facts applied before, so the engine sees nothing to do for them.
    mutating func snapshotFacts() -> [IdentityFacts] {
        model.warmClosures()
        var result: [IdentityFacts] = []
        result.reserveCapacity(model.userCount)
        model.forEachUser { slot, user in
            var facts = model.facts(user, slot: slot)
            if let before = applied[user.externalId] {
                if Self.sameIgnoringVersion(facts, before), facts.version <= before.version {
                    facts = before
                } else {
                    facts.version = max(facts.version, before.version)
                }
            }
            result.append(facts)
        }
        return result
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
            if let before, Self.sameIgnoringVersion(facts, before) { continue }
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
        applied[key] = facts
    }

    static func sameIgnoringVersion(_ a: IdentityFacts, _ b: IdentityFacts) -> Bool {
        var a = a
        a.version = b.version
        return a == b
    }
}
