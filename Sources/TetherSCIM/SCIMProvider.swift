import Foundation
import Logging
import TetherCore
import TetherEngine
import TetherStore

/// The SCIM service provider's operations on Users and Groups, independent of HTTP: every
/// write validates, turns into lifecycle events and commits with them in one transaction.
struct SCIMProvider<Store: SCIMResourceReading>: Sendable {
    let store: Store
    let engine: Engine
    let clock: any WallClock
    let logger: Logger
    /// The largest page a query returns (`filter.maxResults`).
    let maxResults: Int
    let gate = SCIMWriteGate()

    /// A stored resource with its attributes decoded.
    struct Resource: Sendable {
        var record: SCIMResourceRecord
        var attributes: SCIMJSON.Object
        var type: SCIMResourceType { record.kind == .user ? .user : .group }
    }

    /// What a write left: the resource (nil after a delete) and what the lifecycle did.
    struct Written: Sendable {
        var resource: Resource?
        var outcomes: [EventOutcome]
    }

    // MARK: Reading

    static func kind(of type: SCIMResourceType) -> SCIMResourceKind { type.name == "User" ? .user : .group }

    func decode(_ record: SCIMResourceRecord) throws -> Resource {
        guard case .object(let attributes)? = try? SCIMJSON.parse(record.body) else {
            throw StoreError(.corrupt, "stored SCIM resource \(record.id) is not a JSON object")
        }
        return Resource(record: record, attributes: attributes)
    }

    /// The resource `id` of `type`; `404` when there is none (or it is of the other type).
    func load(_ id: String, type: SCIMResourceType) async throws -> Resource {
        guard let record = try await store.scimResource(id: id), record.kind == Self.kind(of: type) else {
            throw SCIMError.notFound("no \(type.name) has id \(id)")
        }
        return try decode(record)
    }

    func membership() async throws -> SCIMMembership { SCIMMembership(try await store.scimGroupGraph()) }

    /// The Groups a User belongs to, for its `groups` (nothing for a Group).
    func groups(of resource: Resource) async throws -> [SCIMAncestor] {
        resource.type.name == "User" ? try await store.scimAncestors(of: resource.record.id) : []
    }

    /// The full representation: `schemas`, `id`, the stored attributes, a User's `groups`, `meta`.
    func render(_ resource: Resource, groups ancestors: [SCIMAncestor], base: String) -> SCIMJSON.Object {
        let type = resource.type
        let id = resource.record.id
        var members: [SCIMJSON.Object.Member] = [
            .init("schemas", resource.attributes["schemas"] ?? [.string(type.schema.id)]),
            .init("id", .string(id)),
        ]
        var groups: SCIMJSON.Object.Member?
        if type.name == "User" {
            let entries = ancestors.map { entry -> SCIMJSON in
                .object(SCIMJSON.Object([
                    .init("value", .string(entry.id)),
                    .init("$ref", .string("\(base)/Groups/\(entry.id)")),
                    .init("display", .string(entry.displayName)),
                    .init("type", .string(entry.direct ? "direct" : "indirect")),
                ]))
            }
            if !entries.isEmpty { groups = .init("groups", .array(entries)) }
        }
        for var member in resource.attributes where member.name != "schemas" {
            if type.name == "Group", member.name == "members", !resource.record.pendingMembers.isEmpty {
                // References that name no resource yet are kept, not shown.
                let resolved = Set(resource.record.members)
                let shown = (member.value.arrayValue ?? []).filter { resolved.contains($0["value"]?.stringValue ?? "") }
                if shown.isEmpty { continue }
                member.value = .array(shown)
            }
            if let pending = groups, type.extensions.contains(where: { $0.schema.id == member.name }) {
                members.append(pending)
                groups = nil
            }
            members.append(member)
        }
        if let groups { members.append(groups) }
        members.append(.init("meta", .object(SCIMJSON.Object([
            .init("resourceType", .string(type.name)),
            .init("created", .string(Timestamp.string(resource.record.created))),
            .init("lastModified", .string(Timestamp.string(resource.record.lastModified))),
            .init("location", .string("\(base)\(type.endpoint)/\(id)")),
            .init("version", .string(SCIMVersion.etag(resource.record.version))),
        ]))))
        return SCIMJSON.Object(members)
    }

    // MARK: Writing

    /// Commits `write` with the lifecycle events it causes, in one transaction.
    private func commit(_ write: SCIMWrite, events: [LifecycleEvent], previousKeys: [String: String] = [:]) async throws -> [EventOutcome] {
        try await engine.submit(events, actor: .scim, previousKeys: previousKeys, with: write)
    }

    private static func newID() -> String { UUID().uuidString.lowercased() }
    private static func newEventID() -> String { "scim_" + UUID().uuidString.lowercased() }

    private func checkIfMatch(_ header: String?, _ resource: Resource) throws(SCIMError) {
        guard let header else { return }
        guard SCIMVersion.matches(ifMatch: header, version: resource.record.version) else {
            throw SCIMError.preconditionFailed(
                "If-Match \(header) does not match the current version \(SCIMVersion.etag(resource.record.version)) of \(resource.record.id)")
        }
    }

    /// POST: creates a resource.
    func create(_ type: SCIMResourceType, body: SCIMJSON, base: String) async throws -> Written {
        let attributes = try SCIMResourceBody.read(body, type: type)
        try SCIMValues.validate(attributes, type: type)
        return try await gate.run {
            if type.name == "User" {
                return try await writeUser(existing: nil, attributes: attributes, id: Self.newID(), base: base)
            }
            return try await writeGroup(existing: nil, attributes: attributes, id: Self.newID(), base: base)
        }
    }

    /// PUT: replaces a resource's attributes.
    func replace(_ type: SCIMResourceType, id: String, body: SCIMJSON, ifMatch: String?, base: String) async throws -> Written {
        let attributes = try SCIMResourceBody.read(body, type: type)
        try SCIMValues.validate(attributes, type: type)
        return try await gate.run {
            let existing = try await load(id, type: type)
            try checkIfMatch(ifMatch, existing)
            // Attributes the body leaves out become unassigned (RFC 7644 §3.5.1); if that
            // changes the identity's key (externalId), the identity follows it.
            if type.name == "User" {
                return try await writeUser(existing: existing, attributes: attributes, id: id, base: base)
            }
            return try await writeGroup(existing: existing, attributes: attributes, id: id, base: base)
        }
    }

    /// PATCH: applies operations atomically.
    func patch(_ type: SCIMResourceType, id: String, body: SCIMJSON, ifMatch: String?, base: String) async throws -> Written {
        let patch = try SCIMPatch.parse(body, knownSchemas: type.schemaURNs)
        return try await gate.run {
            let existing = try await load(id, type: type)
            try checkIfMatch(ifMatch, existing)
            let attributes = try patch.apply(to: existing.attributes, type: type)
            if type.name == "User" {
                return try await writeUser(existing: existing, attributes: attributes, id: id, base: base)
            }
            return try await writeGroup(existing: existing, attributes: attributes, id: id, base: base)
        }
    }

    /// DELETE: a User becomes a leaver; a Group's members lose it.
    func delete(_ type: SCIMResourceType, id: String, ifMatch: String?) async throws -> Written {
        try await gate.run {
            let existing = try await load(id, type: type)
            try checkIfMatch(ifMatch, existing)
            let now = clock.now()
            let graph = type.name == "User" ? nil : try await membership()
            let parentIDs: Set<String>
            if let graph {
                parentIDs = Set(graph.parents[id] ?? [])
            } else {
                parentIDs = Set(try await store.scimAncestors(of: id).filter(\.direct).map(\.id))
            }
            var write = SCIMWrite(deletions: [id], expectedVersions: [id: existing.record.version])
            // Parents lose the member.
            for parent in try await store.scimResources(ids: parentIDs) {
                var resource = try decode(parent)
                let kept = (resource.attributes["members"]?.arrayValue ?? []).filter { $0["value"]?.stringValue != id }
                resource.attributes["members"] = kept.isEmpty ? nil : .array(kept)
                resource.attributes = SCIMResourceBody.canonical(resource.attributes, type: .group)
                write.upserts.append(touched(resource, now: now, members: parent.members.filter { $0 != id }))
                write.expectedVersions[parent.id] = parent.version
            }
            var events: [LifecycleEvent] = []
            if type.name == "User" {
                let version = SCIMVersion.next(after: existing.record.version, now: now)
                let facts = SCIMIdentityMapping.facts(
                    of: existing.attributes, id: id, version: version, groups: [],
                    managerKey: try await managerKey(existing.attributes), terminated: true)
                events.append(LifecycleEvent(id: Self.newEventID(), source: .scim, kind: .leaver, occurredAt: now, facts: facts))
            } else if let before = graph {
                let (users, userEvents) = try await membershipMovers(
                    candidates: before.descendants(of: id), before: before, after: before.removing(id), now: now)
                write.upserts += users
                for (id, version) in userEvents.versions { write.expectedVersions[id] = version }
                events += userEvents.events
            }
            let outcomes = try await commit(write, events: events)
            logger.info(
                "scim resource deleted",
                metadata: ["scim.type": "\(type.name)", "scim.id": "\(id)", "events": "\(events.count)"])
            return Written(resource: nil, outcomes: outcomes)
        }
    }

    /// A copy of `resource`'s record with its attributes, a new version and `now` as lastModified.
    private func touched(_ resource: Resource, now: Date, members: [String]? = nil) -> SCIMResourceRecord {
        var record = resource.record
        record.version = SCIMVersion.next(after: record.version, now: now)
        record.lastModified = now
        record.body = SCIMJSON.object(resource.attributes).text
        if let members { record.members = members }
        return record
    }

    /// The manager's key in source `scim`, from `manager.value` (a SCIM id).
    private func managerKey(_ attributes: SCIMJSON.Object) async throws -> String? {
        guard let value = attributes[SCIMSchema.enterpriseUserURN]?["manager"]?["value"]?.stringValue, !value.isEmpty else {
            return nil
        }
        if let record = try await store.scimResource(id: value), record.kind == .user {
            return SCIMIdentityMapping.key(of: try decode(record).attributes, id: record.id)
        }
        return value
    }

    private func writeUser(existing: Resource?, attributes: SCIMJSON.Object, id: String, base: String) async throws -> Written {
        let userName = attributes["userName"]?.stringValue ?? ""
        let holders = try await store.scimResources(kind: .user, where: .userName, equals: userName)
        if holders.contains(where: { $0.id != id }) {
            throw SCIMError.uniqueness("userName \"\(userName)\" is already taken")
        }
        if let existing, existing.attributes == attributes {
            return Written(resource: existing, outcomes: [])
        }
        let now = clock.now()
        let version = SCIMVersion.next(after: existing?.record.version, now: now)
        let record = SCIMResourceRecord(
            id: id, kind: .user, userName: userName, displayName: attributes["displayName"]?.stringValue,
            externalId: attributes["externalId"]?.stringValue, version: version, created: existing?.record.created ?? now,
            lastModified: now, body: SCIMJSON.object(attributes).text)
        // Groups that named this User before it existed (by id or externalId) now hold it.
        let (claimed, claimedVersions) = try await claimPendingMemberships(
            of: id, externalId: record.externalId, now: now, base: base)
        let groups: Set<String>
        if claimed.isEmpty {
            groups = Set(try await store.scimAncestors(of: id).map(\.displayName).filter { !$0.isEmpty })
        } else {
            var graph = try await membership()
            for group in claimed {
                graph = graph.replacing(SCIMGroupNode(id: group.id, displayName: group.displayName ?? "", members: group.members))
            }
            groups = graph.groupNames(of: id)
        }
        let facts = SCIMIdentityMapping.facts(
            of: attributes, id: id, version: version, groups: groups, managerKey: try await managerKey(attributes))
        let event = LifecycleEvent(
            id: Self.newEventID(), source: .scim, kind: existing == nil ? .joiner : .mover, occurredAt: now, facts: facts)
        var previousKeys: [String: String] = [:]
        if let existing {
            let oldKey = SCIMIdentityMapping.key(of: existing.attributes, id: id)
            if oldKey != facts.externalId { previousKeys[event.id] = oldKey }
        }
        var write = SCIMWrite(upserts: [record] + claimed, expectedVersions: [id: existing?.record.version])
        for (groupID, version) in claimedVersions { write.expectedVersions[groupID] = version }
        let outcomes = try await commit(write, events: [event], previousKeys: previousKeys)
        logger.info(
            existing == nil ? "scim user created" : "scim user changed",
            metadata: [
                "scim.id": "\(id)", "event": "\(event.id)", "status": "\(outcomes.first?.status.rawValue ?? "-")",
                "transition": "\(outcomes.first?.transition?.rawValue ?? "-")", "groups.resolved": "\(claimed.count)",
            ])
        return Written(resource: Resource(record: record, attributes: attributes), outcomes: outcomes)
    }

    /// A Group's members, completed and sorted: each names a User or Group (not the Group
    /// itself), once; `type` is the member's resource type and `$ref` its URI.
    struct Members {
        /// The attributes with `members` completed.
        var attributes: SCIMJSON.Object
        /// The ids of the members that exist, in the order given.
        var resolved: [String]
        /// The values that name no resource yet, in the order given: kept in the body without
        /// `type` or `$ref`, hidden from every read, and resolved when that User arrives.
        var pending: [String]
    }

    /// Checks and completes a Group's members. A value that names no resource yet is not an
    /// error: identity providers push Groups while their Users are still being provisioned.
    private func completeMembers(_ attributes: SCIMJSON.Object, groupID: String, base: String) async throws -> Members {
        guard let members = attributes["members"]?.arrayValue else { return Members(attributes: attributes, resolved: [], pending: []) }
        var ids: [String] = []
        for (index, member) in members.enumerated() {
            guard let value = member["value"]?.stringValue, !value.isEmpty else {
                throw SCIMError.invalidValue("members[\(index)].value is required: the id of a User or Group")
            }
            guard value != groupID else { throw SCIMError.invalidValue("a Group cannot be a member of itself") }
            ids.append(value)
        }
        let known = Dictionary(
            try await store.scimResources(ids: Set(ids)).map { ($0.id, $0.kind) }, uniquingKeysWith: { a, _ in a })
        var seen = Set<String>()
        var completed: [SCIMJSON] = []
        var result = Members(attributes: attributes, resolved: [], pending: [])
        for (index, member) in members.enumerated() {
            let value = ids[index]
            guard seen.insert(value).inserted else { continue }
            var element = SCIMJSON.Object([.init("value", .string(value))])
            if let kind = known[value] {
                element["$ref"] = member["$ref"] ?? .string("\(base)/\(kind == .user ? "Users" : "Groups")/\(value)")
                element["type"] = .string(kind.rawValue)
                result.resolved.append(value)
            } else {
                result.pending.append(value)
            }
            if let display = member["display"] { element["display"] = display }
            completed.append(.object(element))
        }
        result.attributes["members"] = completed.isEmpty ? nil : .array(completed)
        return result
    }

    /// The Groups waiting for the User `id` (by its id or externalId), rewritten with the User
    /// as a resolved member: what a User's arrival adds to its write.
    private func claimPendingMemberships(
        of id: String, externalId: String?, now: Date, base: String
    ) async throws -> (groups: [SCIMResourceRecord], versions: [String: String]) {
        let values = Set([id] + (externalId.map { [$0] } ?? []))
        var claimed: [SCIMResourceRecord] = []
        var versions: [String: String] = [:]
        for record in try await store.scimGroups(awaitingMember: values) {
            var group = try decode(record)
            var resolved = Set(record.members)
            var members: [SCIMJSON] = []
            for case .object(let element) in group.attributes["members"]?.arrayValue ?? [] {
                guard let value = element["value"]?.stringValue else { continue }
                guard values.contains(value), record.pendingMembers.contains(value) else {
                    members.append(.object(element))
                    continue
                }
                // The reference now names this User, completed as a member written now would
                // be; a User listed twice stays once.
                guard resolved.insert(id).inserted else { continue }
                var member = SCIMJSON.Object([
                    .init("value", .string(id)), .init("$ref", .string("\(base)/Users/\(id)")),
                    .init("type", .string(SCIMResourceKind.user.rawValue)),
                ])
                if let display = element["display"] { member["display"] = display }
                members.append(.object(member))
            }
            group.attributes["members"] = .array(members)
            let memberIDs = members.compactMap { $0["value"]?.stringValue }
            var updated = touched(group, now: now, members: memberIDs.filter(resolved.contains))
            updated.pendingMembers = record.pendingMembers.filter { !values.contains($0) }
            claimed.append(updated)
            versions[record.id] = record.version
        }
        return (claimed, versions)
    }

    private func writeGroup(existing: Resource?, attributes: SCIMJSON.Object, id: String, base: String) async throws -> Written {
        let completed = try await completeMembers(attributes, groupID: id, base: base)
        let (attributes, memberIDs) = (completed.attributes, completed.resolved)
        if let existing, existing.attributes == attributes {
            return Written(resource: existing, outcomes: [])
        }
        let now = clock.now()
        let displayName = attributes["displayName"]?.stringValue ?? ""
        let record = SCIMResourceRecord(
            id: id, kind: .group, displayName: displayName, externalId: attributes["externalId"]?.stringValue,
            members: memberIDs, pendingMembers: completed.pending, version: SCIMVersion.next(after: existing?.record.version, now: now),
            created: existing?.record.created ?? now, lastModified: now, body: SCIMJSON.object(attributes).text)
        let before = try await membership()
        let after = before.replacing(SCIMGroupNode(id: id, displayName: displayName, members: memberIDs))
        let (users, movers) = try await membershipMovers(
            candidates: before.descendants(of: id).union(after.descendants(of: id)), before: before, after: after, now: now)
        var write = SCIMWrite(upserts: [record] + users, expectedVersions: [id: existing?.record.version])
        for (userID, version) in movers.versions { write.expectedVersions[userID] = version }
        let outcomes = try await commit(write, events: movers.events)
        logger.info(
            existing == nil ? "scim group created" : "scim group changed",
            metadata: [
                "scim.id": "\(id)", "members": "\(memberIDs.count)", "members.pending": "\(completed.pending.count)",
                "movers": "\(movers.events.count)",
            ])
        return Written(resource: Resource(record: record, attributes: attributes), outcomes: outcomes)
    }

    /// Mover events for the Users among `candidates` whose Groups differ between `before` and
    /// `after`, and their records with a new version (their `groups` changed).
    private func membershipMovers(
        candidates: Set<String>, before: SCIMMembership, after: SCIMMembership, now: Date
    ) async throws -> ([SCIMResourceRecord], (events: [LifecycleEvent], versions: [String: String])) {
        let userIDs = candidates.filter { !before.isGroup($0) && !after.isGroup($0) }
        var records: [SCIMResourceRecord] = []
        var events: [LifecycleEvent] = []
        var versions: [String: String] = [:]
        for record in try await store.scimResources(ids: userIDs).sorted(by: { $0.id < $1.id }) where record.kind == .user {
            let groups = after.groupNames(of: record.id)
            guard groups != before.groupNames(of: record.id) else { continue }
            let user = try decode(record)
            let updated = touched(user, now: now)
            let facts = SCIMIdentityMapping.facts(
                of: user.attributes, id: record.id, version: updated.version, groups: groups,
                managerKey: try await managerKey(user.attributes))
            events.append(LifecycleEvent(id: Self.newEventID(), source: .scim, kind: .mover, occurredAt: now, facts: facts))
            records.append(updated)
            versions[record.id] = record.version
        }
        return (records, (events, versions))
    }
}
