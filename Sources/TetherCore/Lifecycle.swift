import Foundation

/// Applies lifecycle events to identities: versions, precedence, sticky termination,
/// tombstones and the merge of every source's facts (SPEC §3).
public struct Lifecycle: Sendable {
    /// Sources in order of precedence, highest first. `operator` outranks them all.
    public let precedence: [Source]

    public init(precedence: [Source] = [.hr, .scim, .ldap]) { self.precedence = precedence }

    /// Lower is stronger; a source missing from the list ranks below every listed one.
    public func rank(_ source: Source) -> Int {
        if source == .operator { return -1 }
        return precedence.firstIndex(of: source) ?? precedence.count
    }

    /// Whether `source` may reverse a status set by `setter`.
    public func mayOverride(_ source: Source, statusSetBy setter: Source?) -> Bool {
        guard let setter else { return true }
        return rank(source) <= rank(setter)
    }

    /// Decides what `event` does to `existing` (nil: nobody correlates).
    ///
    /// - Parameters:
    ///   - newID: the id a new identity gets.
    ///   - ceiling: the latest version a source may state now (``Timestamp/versionCeiling(now:tolerance:)``).
    ///     A stored version above it came from a clock ahead, before such versions were
    ///     refused: it makes no later event stale.
    ///   - resolveManager: maps a source's manager key to a Tether identity id.
    public func decide(
        _ event: LifecycleEvent, existing: Identity?, newID: IdentityID, ceiling: String? = nil,
        resolveManager: (Source, String) -> IdentityID? = { _, _ in nil }
    ) -> LifecycleDecision {
        let source = event.source
        var facts = event.facts
        if event.kind == .leaver, facts.status == nil || facts.status == .active {
            facts.status = .terminated
        }

        guard let existing else {
            let claimed = facts.status ?? .active
            var identity = Identity(
                id: newID, userName: "", status: claimed,
                statusSource: claimed == .active ? nil : source,
                sources: [source: facts], lastEvents: [source: event.id],
                isTombstone: claimed == .terminated)
            merge(into: &identity, resolveManager: resolveManager)
            let transition: IdentityTransition =
                switch claimed {
                case .active: .joined
                case .suspended: .suspended
                case .terminated: .terminated
                }
            return .apply(identity, transition: transition, lag: nil)
        }

        if let last = existing.sources[source]?.version, facts.version < last,
            !(ceiling.map { Timestamp.version(last, isLaterThan: $0) } ?? false)
        {
            return .stale(identity: existing.id, lastVersion: last)
        }

        var identity = existing
        identity.sources[source] = facts
        identity.lastEvents[source] = event.id
        var lag: DirectoryLag?

        switch facts.status {
        case nil:
            break
        case .active?:
            if existing.status != .active {
                if mayOverride(source, statusSetBy: existing.statusSource) {
                    identity.status = .active
                    identity.statusSource = nil
                    identity.isTombstone = false
                } else {
                    lag = DirectoryLag(
                        identity: existing.id, userName: existing.userName, source: source,
                        statusSource: existing.statusSource ?? source, status: existing.status)
                }
            }
        case .suspended?:
            if existing.status == .active {
                identity.status = .suspended
                identity.statusSource = source
            } else if existing.status == .suspended {
                identity.statusSource = stronger(source, existing.statusSource)
            }
        case .terminated?:
            identity.status = .terminated
            identity.statusSource =
                existing.status == .terminated ? stronger(source, existing.statusSource) : source
        }

        merge(into: &identity, resolveManager: resolveManager)
        return .apply(identity, transition: transition(from: existing, to: identity), lag: lag)
    }

    /// Recomputes the merged fields of `identity` from its sources' facts, by precedence.
    public func merge(into identity: inout Identity, resolveManager: (Source, String) -> IdentityID?) {
        let ordered = ([Source.operator] + precedence + Source.allCases)
            .reduce(into: [Source]()) { if !$0.contains($1) { $0.append($1) } }
            .compactMap { source in identity.sources[source].map { (source, $0) } }
        func first(_ field: KeyPath<IdentityFacts, String?>) -> String? {
            ordered.lazy.compactMap { $0.1[keyPath: field] }.first { !$0.isEmpty }
        }
        identity.userName = first(\.userName) ?? first(\.email) ?? first(\.externalId).map { "unknown:\($0)" }
            ?? identity.userName
        identity.email = first(\.email)
        identity.displayName = first(\.displayName)
        identity.employeeNumber = first(\.employeeNumber)
        identity.department = first(\.department)
        identity.title = first(\.title)
        identity.manager = nil
        for (source, facts) in ordered {
            if let key = facts.manager, let manager = resolveManager(source, key) {
                identity.manager = manager
                break
            }
        }
        identity.groups = ordered.reduce(into: Set<String>()) { $0.formUnion($1.1.groups) }
        var attributes: [String: [String]] = [:]
        for (_, facts) in ordered.reversed() {
            for (name, values) in facts.attributes { attributes[name] = values }
        }
        identity.attributes = attributes
    }

    private func stronger(_ a: Source, _ b: Source?) -> Source {
        guard let b else { return a }
        return rank(a) <= rank(b) ? a : b
    }

    /// How `old` became `new`, as one audit action.
    public func transition(from old: Identity, to new: Identity) -> IdentityTransition {
        if old.status != new.status {
            switch new.status {
            case .active: return .reactivated
            case .suspended: return .suspended
            case .terminated: return .terminated
            }
        }
        let moved =
            old.userName != new.userName || old.email != new.email || old.department != new.department
            || old.title != new.title || old.manager != new.manager || old.groups != new.groups
            || old.attributes != new.attributes || old.employeeNumber != new.employeeNumber
            || old.displayName != new.displayName
        return moved ? .moved : .unchanged
    }
}
