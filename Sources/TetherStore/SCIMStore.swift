import Foundation
import TetherCore

/// Durable SCIM resources (Users and Groups as SCIM clients wrote them) as the SCIM API
/// reads them. They are kept by the same store as the identities they feed, so that a
/// resource write and its lifecycle effect commit in one transaction: the engine's
/// ``ChangesetCommitting/commit(_:with:)``.
public protocol SCIMResourceReading: Sendable {
    /// The resource with this id, of either kind.
    func scimResource(id: String) async throws -> SCIMResourceRecord?
    /// The resources with these ids that exist, in no particular order.
    func scimResources(ids: Set<String>) async throws -> [SCIMResourceRecord]
    /// Resources of one kind in creation order; `limit` nil reads them all.
    func scimResources(kind: SCIMResourceKind, offset: Int, limit: Int?) async throws -> [SCIMResourceRecord]
    /// Resources of one kind whose indexed `field` equals `value` (userName and displayName
    /// case-insensitively, externalId exactly).
    func scimResources(kind: SCIMResourceKind, where field: SCIMIndexedField, equals value: String) async throws -> [SCIMResourceRecord]
    func scimResourceCount(kind: SCIMResourceKind) async throws -> Int
    /// Every Group with its direct members, without bodies: the membership graph.
    func scimGroupGraph() async throws -> [SCIMGroupNode]
    /// The Groups `memberID` belongs to, directly or through nested Groups, nearest first;
    /// their `members` are left empty. Reads only the memberships on the way up.
    func scimAncestors(of memberID: String) async throws -> [SCIMAncestor]
    /// The Groups that list one of `values` as a member that named no resource when the Group
    /// was written (``SCIMResourceRecord/pendingMembers``), in creation order.
    func scimGroups(awaitingMember values: Set<String>) async throws -> [SCIMResourceRecord]
}

/// `User` or `Group`.
public enum SCIMResourceKind: String, Sendable, Hashable, Codable, CaseIterable {
    case user = "User"
    case group = "Group"
}

/// The columns a SCIM lookup can use without reading every resource.
public enum SCIMIndexedField: String, Sendable, Hashable {
    case userName, externalId, displayName
}

/// One stored SCIM resource. `body` is the resource's JSON as TetherSCIM owns it; the other
/// fields are copies of what the store indexes and constrains.
public struct SCIMResourceRecord: Sendable, Hashable {
    /// The SCIM id, assigned by Tether.
    public var id: String
    /// User or Group.
    public var kind: SCIMResourceKind
    /// Users: the userName, unique case-insensitively.
    public var userName: String?
    /// The displayName (a Group's name, as policies' `memberOf` uses it).
    public var displayName: String?
    /// The client's externalId.
    public var externalId: String?
    /// Groups: the ids of the direct members (Users or Groups).
    public var members: [String]
    /// Groups: member values that named no User or Group when the Group was written. Identity
    /// providers push Groups while their Users are still being provisioned; such a reference is
    /// kept and resolved when a User with that id or externalId arrives.
    public var pendingMembers: [String]
    /// The resource version (`meta.version` without the `W/"…"`); increases with every write.
    public var version: String
    /// When the resource was created (`meta.created`).
    public var created: Date
    /// When it last changed (`meta.lastModified`).
    public var lastModified: Date
    /// The resource's attributes as JSON text.
    public var body: String

    /// A record.
    public init(
        id: String, kind: SCIMResourceKind, userName: String? = nil, displayName: String? = nil, externalId: String? = nil,
        members: [String] = [], pendingMembers: [String] = [], version: String, created: Date, lastModified: Date,
        body: String
    ) {
        self.id = id
        self.kind = kind
        self.userName = userName
        self.displayName = displayName
        self.externalId = externalId
        self.members = members
        self.pendingMembers = pendingMembers
        self.version = version
        self.created = created
        self.lastModified = lastModified
        self.body = body
    }
}

/// A Group in the membership graph.
public struct SCIMGroupNode: Sendable, Hashable {
    /// The Group's SCIM id.
    public var id: String
    /// The Group's displayName.
    public var displayName: String
    /// The ids of its direct members.
    public var members: [String]

    /// A node.
    public init(id: String, displayName: String, members: [String]) {
        self.id = id
        self.displayName = displayName
        self.members = members
    }
}

/// A Group a resource belongs to, and whether directly.
public struct SCIMAncestor: Sendable, Hashable {
    /// The Group's SCIM id.
    public var id: String
    /// The Group's displayName.
    public var displayName: String
    /// True when the resource is a direct member; false through nesting.
    public var direct: Bool

    /// An ancestor.
    public init(id: String, displayName: String, direct: Bool) {
        self.id = id
        self.displayName = displayName
        self.direct = direct
    }
}

/// Everything one SCIM request changes in the SCIM tables.
public struct SCIMWrite: Sendable, Hashable {
    /// Resources to insert or replace.
    public var upserts: [SCIMResourceRecord] = []
    /// Resources to delete (their memberships go with them).
    public var deletions: [String] = []
    /// Optimistic concurrency: the version each resource must still have when the write
    /// commits (`nil`: it must not exist yet).
    public var expectedVersions: [String: String?] = [:]

    /// A write.
    public init(upserts: [SCIMResourceRecord] = [], deletions: [String] = [], expectedVersions: [String: String?] = [:]) {
        self.upserts = upserts
        self.deletions = deletions
        self.expectedVersions = expectedVersions
    }

    /// True when the write changes nothing.
    public var isEmpty: Bool { upserts.isEmpty && deletions.isEmpty }
}

/// Why a SCIM write was refused at commit: the resource changed since it was read, or a
/// uniqueness constraint was hit. Nothing was written.
public struct SCIMWriteConflict: Error, Sendable, Hashable, CustomStringConvertible {
    /// Why the write was refused.
    public enum Reason: Sendable, Hashable {
        /// The resource's version is not the one the write expected.
        case changed(id: String)
        /// Another User has this userName (case-insensitively).
        case userNameTaken(String)
    }

    /// Why the write was refused.
    public var reason: Reason

    /// A conflict.
    public init(_ reason: Reason) { self.reason = reason }

    /// What conflicted, for logs.
    public var description: String {
        switch reason {
        case .changed(let id): "SCIM resource \(id) changed since it was read"
        case .userNameTaken(let name): "userName \(name) is already taken"
        }
    }
}
