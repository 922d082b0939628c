import TetherStore

/// The Group membership graph: which Groups contain which resources, directly or through
/// nested Groups. Cycles are tolerated (each Group is visited once).
struct SCIMMembership: Sendable {
    private(set) var groups: [String: SCIMGroupNode]
    private(set) var order: [String]
    /// Member id → the Groups that list it directly, in graph order.
    private(set) var parents: [String: [String]]

    init(_ nodes: [SCIMGroupNode]) {
        groups = [:]
        order = []
        parents = [:]
        for node in nodes {
            groups[node.id] = node
            order.append(node.id)
        }
        rebuildParents()
    }

    private mutating func rebuildParents() {
        parents = [:]
        for id in order {
            for member in groups[id]?.members ?? [] { parents[member, default: []].append(id) }
        }
    }

    /// The graph after `node` is written (added or replaced).
    func replacing(_ node: SCIMGroupNode) -> SCIMMembership {
        var copy = self
        if copy.groups[node.id] == nil { copy.order.append(node.id) }
        copy.groups[node.id] = node
        copy.rebuildParents()
        return copy
    }

    /// The graph after resource `id` (a User or a Group) is deleted: gone as a Group and as a member.
    func removing(_ id: String) -> SCIMMembership {
        var copy = self
        copy.groups[id] = nil
        copy.order.removeAll { $0 == id }
        for groupID in copy.order {
            copy.groups[groupID]?.members.removeAll { $0 == id }
        }
        copy.rebuildParents()
        return copy
    }

    /// The Groups `id` belongs to: direct ones first, then those reached through nesting.
    func ancestors(of id: String) -> [SCIMAncestor] {
        var result: [SCIMAncestor] = []
        var seen = Set<String>([id])
        var frontier = parents[id] ?? []
        var direct = true
        while !frontier.isEmpty {
            var next: [String] = []
            for groupID in frontier where seen.insert(groupID).inserted {
                guard let group = groups[groupID] else { continue }
                result.append(SCIMAncestor(id: group.id, displayName: group.displayName, direct: direct))
                next += parents[groupID] ?? []
            }
            frontier = next
            direct = false
        }
        return result
    }

    /// The displayNames of every Group `id` belongs to, transitively: the identity's groups.
    func groupNames(of id: String) -> Set<String> {
        Set(ancestors(of: id).map(\.displayName).filter { !$0.isEmpty })
    }

    /// Every resource inside Group `id`, transitively (Groups and Users alike).
    func descendants(of id: String) -> Set<String> {
        var seen = Set<String>()
        var frontier = groups[id]?.members ?? []
        while let next = frontier.popLast() {
            guard seen.insert(next).inserted else { continue }
            frontier += groups[next]?.members ?? []
        }
        seen.remove(id)
        return seen
    }

    func isGroup(_ id: String) -> Bool { groups[id] != nil }
}
