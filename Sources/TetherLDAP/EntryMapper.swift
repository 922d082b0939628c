import TetherConfig
import TetherCore

/// A person as read from the directory and mapped by `sources.ldap.mapping`, before group
/// membership and manager are resolved against the rest of the directory.
public struct DirectoryUser: Sendable, Hashable {
    /// The directory's own key for the entry: its entryUUID when the server has one, else
    /// the mapped externalId. Syncrepl deletions are keyed by it.
    public var key: String
    public var dn: String
    /// ``dn`` normalised for comparison (``DistinguishedName/normalize(_:)``).
    public var normalizedDN: String
    /// The identity's stable key (entryUUID, or objectGUID as a UUID string).
    public var externalId: String
    public var userName: String?
    public var email: String?
    public var displayName: String?
    public var employeeNumber: String?
    public var department: String?
    public var title: String?
    /// The manager's DN, normalised.
    public var managerDN: String?
    /// Extra identity attributes from `sources.ldap.attributes`.
    public var attributes: [String: [String]]
    /// Whether `suspendWhen` holds for the entry.
    public var suspended: Bool
    /// The entry's own version (entryCSN, else modifyTimestamp/whenChanged), normalised.
    public var version: String
    /// The raw `modifyTimestamp`, the high-water mark of polling.
    public var modifyTimestamp: String?
    /// Active Directory's `uSNChanged`, when present.
    public var usnChanged: Int64?
}

/// A group as read from the directory.
public struct DirectoryGroup: Sendable, Hashable {
    /// entryUUID, else the normalised DN.
    public var key: String
    public var dn: String
    public var normalizedDN: String
    public var cn: String?
    /// Member DNs (from `groups.memberAttributes`), normalised.
    public var memberDNs: [String]
    /// `memberUid` values (posixGroup), lowercased.
    public var memberUids: [String]
    public var version: String
    public var modifyTimestamp: String?
    public var usnChanged: Int64?
}

/// Maps directory entries to ``DirectoryUser`` and ``DirectoryGroup`` as configured:
/// attribute mapping and extras, objectGUID as a UUID string, versions, and `suspendWhen`.
public struct EntryMapper: Sendable {
    public let configuration: LDAPConfiguration
    private let mapping: [String: String]
    private let extras: [(name: String, attribute: String)]
    private let memberAttributes: [String]
    private let externalIdIsBinary: Bool

    /// Creates a mapper for `configuration`.
    public init(_ configuration: LDAPConfiguration) {
        self.configuration = configuration
        var mapping: [String: String] = [:]
        for field in LDAPMappingConfiguration.fields {
            if let attribute = configuration.mapping[field] { mapping[field] = attribute.lowercased() }
        }
        self.mapping = mapping
        self.extras = configuration.attributes.sorted { $0.key < $1.key }.map { ($0.key, $0.value.lowercased()) }
        self.memberAttributes = (configuration.groups?.memberAttributes ?? ["member", "uniqueMember"]).map {
            $0.lowercased()
        }
        self.externalIdIsBinary = BinaryAttributes.known.contains(configuration.mapping.externalId.lowercased())
    }

    /// Operational attributes read for versions and keys.
    static let bookkeeping = ["entryUUID", "entryCSN", "modifyTimestamp", "whenChanged", "uSNChanged"]

    /// The search for people, with every attribute the mapping needs.
    public var usersRequest: LDAPSearchRequest {
        var attributes: [String] = LDAPMappingConfiguration.fields.compactMap { configuration.mapping[$0] }
        attributes += configuration.attributes.values.sorted()
        if let suspend = configuration.suspendWhen { attributes.append(suspend.attribute) }
        attributes += Self.bookkeeping
        return LDAPSearchRequest(
            base: configuration.users.base, scope: configuration.users.scope == .one ? .one : .sub,
            filter: LDAPFilter.parenthesized(configuration.users.filter), attributes: Self.unique(attributes),
            binaryAttributes: Set(attributes.map { $0.lowercased() }).intersection(BinaryAttributes.known))
    }

    /// The search for groups, or nil when no groups are configured.
    public var groupsRequest: LDAPSearchRequest? {
        guard let groups = configuration.groups else { return nil }
        let attributes = ["cn"] + groups.memberAttributes + ["memberUid"] + Self.bookkeeping
        return LDAPSearchRequest(
            base: groups.base, scope: groups.scope == .one ? .one : .sub,
            filter: LDAPFilter.parenthesized(groups.filter), attributes: Self.unique(attributes))
    }

    /// Maps a person's entry; nil when it has no externalId (the mapping is then wrong for it).
    ///
    /// - Parameter syncUUID: the entryUUID a syncrepl message named the entry by.
    public func user(_ entry: LDAPEntry, syncUUID: String? = nil) -> DirectoryUser? {
        guard let externalId = externalId(of: entry) else { return nil }
        func field(_ name: String) -> String? {
            guard let attribute = mapping[name] else { return nil }
            return entry.attributes[attribute]?.first { !$0.isEmpty }
        }
        var attributes: [String: [String]] = [:]
        for (name, attribute) in extras {
            if let values = entry.attributes[attribute], !values.isEmpty { attributes[name] = values }
        }
        return DirectoryUser(
            key: syncUUID ?? entry.attributes["entryuuid"]?.first ?? externalId,
            dn: entry.dn, normalizedDN: DistinguishedName.normalize(entry.dn), externalId: externalId,
            userName: field("userName"), email: field("email"), displayName: field("displayName"),
            employeeNumber: field("employeeNumber"), department: field("department"), title: field("title"),
            managerDN: field("manager").map(DistinguishedName.normalize), attributes: attributes,
            suspended: isSuspended(entry), version: Self.version(of: entry),
            modifyTimestamp: entry.attributes["modifytimestamp"]?.first,
            usnChanged: entry.attributes["usnchanged"]?.first.flatMap { Int64($0) })
    }

    /// Maps a group's entry.
    public func group(_ entry: LDAPEntry, syncUUID: String? = nil) -> DirectoryGroup {
        let normalizedDN = DistinguishedName.normalize(entry.dn)
        var members: [String] = []
        var uids: [String] = []
        for attribute in memberAttributes where attribute != "memberuid" {
            for value in entry.attributes[attribute] ?? [] {
                members.append(DistinguishedName.normalize(Self.strippingOptionalUID(value)))
            }
        }
        for value in entry.attributes["memberuid"] ?? [] { uids.append(value.lowercased()) }
        return DirectoryGroup(
            key: syncUUID ?? entry.attributes["entryuuid"]?.first ?? normalizedDN, dn: entry.dn,
            normalizedDN: normalizedDN, cn: entry.attributes["cn"]?.first, memberDNs: members, memberUids: uids,
            version: Self.version(of: entry), modifyTimestamp: entry.attributes["modifytimestamp"]?.first,
            usnChanged: entry.attributes["usnchanged"]?.first.flatMap { Int64($0) })
    }

    /// The entry's externalId: text, or a binary GUID rendered as a UUID string.
    func externalId(of entry: LDAPEntry) -> String? {
        let attribute = configuration.mapping.externalId.lowercased()
        if externalIdIsBinary, let bytes = entry.binary[attribute]?.first {
            return UUIDText.format(bytes, littleEndianFields: true)
        }
        return entry.attributes[attribute]?.first { !$0.isEmpty }
    }

    /// Whether `suspendWhen` holds. Values compare case-insensitively, as most directory
    /// attributes do (`nsAccountLock: TRUE`, `employeeType: Locked`).
    func isSuspended(_ entry: LDAPEntry) -> Bool {
        guard let rule = configuration.suspendWhen else { return false }
        let values = entry.attributes[rule.attribute.lowercased()] ?? []
        switch rule.test {
        case .equals(let wanted):
            return values.contains { $0.caseInsensitiveEquals(wanted) }
        case .in(let allowed):
            return values.contains { value in allowed.contains { value.caseInsensitiveEquals($0) } }
        case .present(let wanted):
            return values.contains { !$0.isEmpty } == wanted
        case .prefix(let prefix):
            return values.contains { $0.lowercased().hasPrefix(prefix.lowercased()) }
        case .bitsSet(let bits):
            return values.contains { value in
                guard let number = Int64(value.trimmingWhitespace()) else { return false }
                return number & Int64(bits) == Int64(bits)
            }
        }
    }

    /// entryCSN when the server keeps one, else modifyTimestamp, else whenChanged; "" when none.
    static func version(of entry: LDAPEntry) -> String {
        if let csn = entry.attributes["entrycsn"]?.max(), let version = DirectoryVersion.fromCSN(csn) { return version }
        for name in ["modifytimestamp", "whenchanged"] {
            if let text = entry.attributes[name]?.first, let version = DirectoryVersion.fromGeneralizedTime(text) {
                return version
            }
        }
        return ""
    }

    /// `uniqueMember` values may end in an optional UID (`…,dc=com#'0101'B`, RFC 4517 §3.3.21).
    static func strippingOptionalUID(_ value: String) -> String {
        guard value.hasSuffix("'B"), let hash = value.lastIndex(of: "#") else { return value }
        let bits = value[value.index(after: hash)...].dropFirst().dropLast(2)
        return bits.allSatisfy({ $0 == "0" || $0 == "1" }) ? String(value[..<hash]) : value
    }

    private static func unique(_ names: [String]) -> [String] {
        var seen: Set<String> = []
        return names.filter { seen.insert($0.lowercased()).inserted }
    }
}

extension String {
    func caseInsensitiveEquals(_ other: String) -> Bool {
        self == other || lowercased() == other.lowercased()
    }
}
