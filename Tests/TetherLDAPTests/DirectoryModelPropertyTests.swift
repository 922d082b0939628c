import PropertyInput
import Testing

@testable import TetherLDAP

/// The model's group names against a plain walk of the groups: people in no group, one, two
/// or many (listed by DN, by memberUid, or both), groups nested in chains and in cycles, read
/// whole and then changed, with every cache the model keeps for a complete read in play.
@Suite("Directory model: group names")
struct DirectoryModelPropertyTests {
    static func user(_ number: Int) -> DirectoryUser {
        let dn = "uid=u\(number),ou=people,dc=example,dc=com"
        return DirectoryUser(
            key: "key-\(number)", dn: dn, normalizedDN: dn, externalId: "u\(number)", userName: "u\(number)",
            email: nil, displayName: nil, employeeNumber: nil, department: nil, title: nil, managerDN: nil,
            attributes: [:], suspended: false, version: "1")
    }

    static func groupDN(_ number: Int) -> String { "cn=g\(number),ou=groups,dc=example,dc=com" }

    /// The names `model` should give `user`: the DN and cn of each group that lists them, and
    /// of each group that lists one of those, and so on (when nested).
    static func expectedNames(_ user: DirectoryUser, groups: [DirectoryGroup], nested: Bool) -> Set<String> {
        var reached = Set(groups.filter { $0.memberDNs.contains(user.normalizedDN) || $0.memberUids.contains(user.userName!) }.map(\.normalizedDN))
        var frontier = Array(reached)
        while nested, let dn = frontier.popLast() {
            for group in groups where group.memberDNs.contains(dn) && !reached.contains(group.normalizedDN) {
                reached.insert(group.normalizedDN)
                frontier.append(group.normalizedDN)
            }
        }
        var names: Set<String> = []
        for group in groups where reached.contains(group.normalizedDN) {
            names.insert(group.dn)
            if let cn = group.cn { names.insert(cn) }
        }
        return names
    }

    @Test("group names from a complete read, and after groups change, equal a walk of the groups", arguments: [true, false])
    func namesMatchAWalk(nested: Bool) {
        let seed = propertySeed("DirectoryModel group names (nested: \(nested))")
        var random = SeededRandom(seed: seed)
        var failures = PropertyFailures(seed: seed)
        for round in 0..<40 {
            let people = (0..<(20 + random.below(60))).map(Self.user)
            var groups: [DirectoryGroup] = []
            for number in 0..<(1 + random.below(12)) {
                var members: [String] = []
                var uids: [String] = []
                for person in people where random.chance(15) {
                    if random.chance(80) { members.append(person.normalizedDN) } else { uids.append(person.userName!) }
                }
                // Groups inside groups, forwards and backwards: chains, and now and then a cycle.
                for other in 0..<12 where other != number && random.chance(10) { members.append(Self.groupDN(other)) }
                groups.append(DirectoryGroup(
                    key: "group-\(number)", dn: Self.groupDN(number), normalizedDN: Self.groupDN(number),
                    cn: random.chance(90) ? "g\(number)" : nil, memberDNs: members.shuffled(using: &random),
                    memberUids: uids, version: "1"))
            }
            var model = DirectoryModel(nested: nested, users: people, groups: groups)
            func compare(_ stage: String) {
                let facts = Dictionary(uniqueKeysWithValues: model.allFacts().map { ($0.externalId!, $0.groups) })
                for person in people {
                    let expected = Self.expectedNames(person, groups: groups, nested: nested)
                    failures.check(
                        facts[person.externalId] == expected,
                        "round \(round), \(stage): \(person.externalId) has \(facts[person.externalId]?.sorted() ?? []), expected \(expected.sorted())")
                    failures.check(model.facts(forUser: person.key)?.groups == expected, "round \(round), \(stage): facts(forUser:) of \(person.externalId)")
                }
            }
            compare("complete read")
            // A change: one group loses a member and gains another; the caches are forgotten.
            if var group = groups.first {
                if !group.memberDNs.isEmpty { group.memberDNs.removeFirst() }
                group.memberDNs.append(people[random.below(people.count)].normalizedDN)
                groups[0] = group
                model.upsertGroup(group)
                compare("after a group change")
            }
        }
        failures.finish("DirectoryModel group names (nested: \(nested)), 40 rounds")
    }
}
