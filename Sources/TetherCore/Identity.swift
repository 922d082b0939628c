import Foundation

/// Where identity facts come from. The order of precedence between them is configuration
/// (`lifecycle.precedence`); `operator` always outranks every source.
public enum Source: String, Sendable, Hashable, Codable, CodingKeyRepresentable, CaseIterable, Comparable {
    case ldap, scim, hr, `operator`

    public static func < (lhs: Source, rhs: Source) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// The lifecycle state of an identity (SPEC §1).
public enum IdentityStatus: String, Sendable, Hashable, Codable, CaseIterable {
    /// Receives the grants policy derives for it.
    case active
    /// Disabled: every grant revoked, identity kept; re-enabling restores its grants.
    case suspended
    /// A leaver. Sticky: only a source of equal or higher precedence reverses it.
    case terminated
}

/// Tether's own stable identifier for an identity, independent of DNs and source keys.
public typealias IdentityID = String

/// What one source says about one person at one version.
///
/// Sources normalise their records into this shape; the lifecycle merges the facts of
/// every source by precedence into an ``Identity``.
public struct IdentityFacts: Sendable, Hashable, Codable {
    /// The person's key in this source (LDAP `entryUUID`/`objectGUID`, SCIM `externalId`, HR id).
    public var externalId: String?
    public var userName: String?
    public var email: String?
    public var displayName: String?
    public var employeeNumber: String?
    public var department: String?
    public var title: String?
    /// The manager's `externalId` in the same source.
    public var manager: String?
    /// The status this source claims for the person; nil when it makes no claim (an HR mover).
    public var status: IdentityStatus?
    /// Transitive group memberships, by every name a policy may use (cn, DN, displayName).
    public var groups: Set<String>
    /// Extra mapped attributes; multi-valued.
    public var attributes: [String: [String]]
    /// The source's version of this record, normalised so that string order is time order.
    public var version: String

    public init(
        externalId: String? = nil, userName: String? = nil, email: String? = nil,
        displayName: String? = nil, employeeNumber: String? = nil, department: String? = nil,
        title: String? = nil, manager: String? = nil, status: IdentityStatus? = .active,
        groups: Set<String> = [], attributes: [String: [String]] = [:], version: String
    ) {
        self.externalId = externalId
        self.userName = userName
        self.email = email
        self.displayName = displayName
        self.employeeNumber = employeeNumber
        self.department = department
        self.title = title
        self.manager = manager
        self.status = status
        self.groups = groups
        self.attributes = attributes
        self.version = version
    }
}

/// A person or service account as Tether knows it: the merge of every source's facts.
public struct Identity: Sendable, Hashable, Codable {
    public var id: IdentityID
    public var userName: String
    public var email: String?
    public var displayName: String?
    public var employeeNumber: String?
    public var department: String?
    public var title: String?
    /// The manager, as a Tether identity id, when it could be resolved.
    public var manager: IdentityID?
    public var status: IdentityStatus
    /// The source whose claim set the current non-active status (nil while active).
    public var statusSource: Source?
    public var groups: Set<String>
    public var attributes: [String: [String]]
    /// The latest applied facts of every source that knows this identity.
    public var sources: [Source: IdentityFacts]
    /// The last event applied from each source, for lineage.
    public var lastEvents: [Source: String]
    /// True when the identity exists only because a leaver named it before any joiner did.
    public var isTombstone: Bool

    public init(
        id: IdentityID, userName: String, email: String? = nil, displayName: String? = nil,
        employeeNumber: String? = nil, department: String? = nil, title: String? = nil,
        manager: IdentityID? = nil, status: IdentityStatus = .active, statusSource: Source? = nil,
        groups: Set<String> = [], attributes: [String: [String]] = [:],
        sources: [Source: IdentityFacts] = [:], lastEvents: [Source: String] = [:],
        isTombstone: Bool = false
    ) {
        self.id = id
        self.userName = userName
        self.email = email
        self.displayName = displayName
        self.employeeNumber = employeeNumber
        self.department = department
        self.title = title
        self.manager = manager
        self.status = status
        self.statusSource = statusSource
        self.groups = groups
        self.attributes = attributes
        self.sources = sources
        self.lastEvents = lastEvents
        self.isTombstone = isTombstone
    }

    /// The key of this identity in the highest-precedence source that has one.
    public func externalId(precedence: [Source]) -> String? {
        for source in precedence + [.operator] {
            if let key = sources[source]?.externalId { return key }
        }
        return nil
    }

    /// The values of a field or extra attribute, as policies and templates see them.
    ///
    /// Core fields are addressed by their SPEC names (`userName`, `department`, …); anything
    /// else is looked up in ``attributes``.
    public func values(of field: String) -> [String] {
        switch fieldValues(of: field) {
        case .one(let value): value.map { [$0] } ?? []
        case .many(let values): values
        }
    }

    /// ``values(of:)`` without building an array for a core field: policies read fields of
    /// every identity.
    public func fieldValues(of field: String) -> FieldValues {
        switch field {
        case "userName": .one(userName)
        case "department": .one(department)
        case "email": .one(email)
        case "title": .one(title)
        case "employeeNumber": .one(employeeNumber)
        case "displayName": .one(displayName)
        case "manager": .one(manager)
        case "id": .one(id)
        case "status": .one(status.rawValue)
        case "groups": .many(groups.sorted())
        default: .many(attributes[field] ?? [])
        }
    }

    /// True when the identity belongs to `group`, compared case-insensitively as LDAP does.
    public func isMember(of group: String) -> Bool {
        // A person is in a handful of groups: comparing with each costs less than hashing the
        // name, and policies ask this of every identity for every group they name.
        if groups.count > 8, groups.contains(group) { return true }
        return groups.contains { Self.equalIgnoringCase($0, group) }
    }

    /// `a.lowercased() == b.lowercased()`, byte by byte without allocating while the bytes
    /// that differ are ASCII; the general comparison only for other text.
    static func equalIgnoringCase(_ a: String, _ b: String) -> Bool {
        let answer = a.utf8.withContiguousStorageIfAvailable { x in
            b.utf8.withContiguousStorageIfAvailable { y in asciiEqualIgnoringCase(x, y) } ?? nil
        } ?? nil
        return answer ?? (a.lowercased() == b.lowercased())
    }

    /// Whether `x` and `y` are equal ignoring ASCII case; nil when that takes more than ASCII
    /// (lowercasing other text may change its length or its bytes).
    private static func asciiEqualIgnoringCase(_ x: UnsafeBufferPointer<UInt8>, _ y: UnsafeBufferPointer<UInt8>) -> Bool? {
        guard x.count == y.count else {
            // Lowercasing never changes the length of ASCII text.
            return x.allSatisfy({ $0 < 0x80 }) && y.allSatisfy({ $0 < 0x80 }) ? false : nil
        }
        for index in 0..<x.count {
            let (p, q) = (x[index], y[index])
            if p == q { continue }
            guard p < 0x80, q < 0x80 else { return nil }
            // The first difference decides: the text before it is equal ignoring case.
            guard p | 0x20 == q | 0x20, (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(p | 0x20) else { return false }
        }
        return true
    }
}

/// The values of one field of an identity: a core field's one value (or none), or a list.
public enum FieldValues: Sequence, Sendable {
    case one(String?)
    case many([String])

    public var isEmpty: Bool {
        switch self {
        case .one(let value): value == nil
        case .many(let values): values.isEmpty
        }
    }

    public func makeIterator() -> Iterator {
        switch self {
        case .one(let value): Iterator(single: value, list: nil)
        case .many(let values): Iterator(single: nil, list: values.makeIterator())
        }
    }

    public struct Iterator: IteratorProtocol {
        var single: String?
        var list: IndexingIterator<[String]>?

        public mutating func next() -> String? {
            if let value = single {
                single = nil
                return value
            }
            return list?.next()
        }
    }
}
