/// Follows group nesting in both directions, safe against cycles (a group that is,
/// directly or through others, a member of itself).
public enum GroupExpander {
    /// `start` and every group that contains one of them, directly or through other groups.
    ///
    /// - Parameter parents: the groups that list a group as a member.
    public static func ancestors<Key: Hashable>(of start: some Sequence<Key>, parents: (Key) -> [Key]) -> Set<Key> {
        var seen = Set(start)
        var queue = Array(seen)
        while let group = queue.popLast() {
            for parent in parents(group) where seen.insert(parent).inserted {
                queue.append(parent)
            }
        }
        return seen
    }

    /// `group` and every group nested in it, at any depth.
    ///
    /// - Parameter children: the groups a group lists as members.
    public static func descendants<Key: Hashable>(of group: Key, children: (Key) -> [Key]) -> Set<Key> {
        ancestors(of: [group], parents: children)
    }
}
