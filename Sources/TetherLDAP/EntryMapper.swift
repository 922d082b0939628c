import TetherConfig
import TetherCore

/// A person as read from the directory and mapped by `sources.ldap.mapping`, before group
/// membership and manager are resolved against the rest of the directory.
public struct DirectoryUser: Sendable, Hashable {
    /// The directory's own key for the entry: its entryUUID when the server has one, else
    /// the mapped externalId. Syncrepl deletions are keyed by it.
    public var key: String
    /// The entry's DN as the server wrote it.
    public var dn: String
    /// ``dn`` normalised for comparison (``DistinguishedName/normalize(_:)``).
    public var normalizedDN: String
    /// The identity's stable key (entryUUID, or objectGUID as a UUID string).
    public var externalId: String
    /// The mapped identity fields (first value of each mapped attribute).
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

/// A person's entry that is in the directory but cannot be read or mapped: no externalId,
/// or a DN or attribute that is not valid UTF-8. It makes a read incomplete for that
/// person, who keeps the state they had (SPEC §3: unknown is not absent).
public struct UnreadableEntry: Sendable, Hashable {
    /// The directory's key for the entry: its syncrepl UUID or entryUUID, else its DN, normalised.
    public var key: String
    /// The DN as read (possibly with U+FFFD where it was not valid UTF-8).
    public var dn: String
    /// ``dn`` normalised.
    public var normalizedDN: String
    /// The mapped userName and email when they could be read: they tell which person the
    /// entry was when nothing else does (after a restart).
    public var userName: String?
    public var email: String?
    /// Why the entry cannot be mapped, in words.
    public var reason: String
    /// The externalId of the person the entry was, once known.
    public var externalId: String?
}

/// What a person's entry maps to.
public enum UserMapping: Sendable, Hashable {
    case user(DirectoryUser)
    case unreadable(UnreadableEntry)
}

/// A group as read from the directory.
public struct DirectoryGroup: Sendable, Hashable {
    /// entryUUID, else the normalised DN.
    public var key: String
    /// The group's DN as the server wrote it, and normalised.
    public var dn: String
    public var normalizedDN: String
    /// The group's common name; policies may name a group by it or by its DN.
    public var cn: String?
    /// Member DNs (from `groups.memberAttributes`), normalised.
    public var memberDNs: [String]
    /// `memberUid` values (posixGroup), lowercased.
    public var memberUids: [String]
    /// The entry's version, raw modifyTimestamp and uSNChanged, as for a person.
    public var version: String
    public var modifyTimestamp: String?
    public var usnChanged: Int64?
}

/// Maps directory entries to ``DirectoryUser`` and ``DirectoryGroup`` as configured:
/// attribute mapping and extras, objectGUID as a UUID string, versions, and `suspendWhen`.
///
/// Entries read with ``usersRequest`` or ``groupsRequest`` are mapped by attribute position
/// (no name lookups); others, such as test fixtures, by name.
public struct EntryMapper: Sendable {
    /// The configuration the mapper follows.
    public let configuration: LDAPConfiguration
    /// The search for people, with every attribute the mapping needs.
    public let usersRequest: LDAPSearchRequest
    /// The search for groups, or nil when no groups are configured.
    public let groupsRequest: LDAPSearchRequest?
    private let users: UserSlots
    private let groups: GroupSlots?
    private let externalIdIsBinary: Bool
    private let externalIdAttribute: String

    /// Operational attributes read for versions and keys.
    static let bookkeeping = ["entryUUID", "entryCSN", "modifyTimestamp", "whenChanged", "uSNChanged"]

    /// Where each mapped attribute sits in a people entry.
    private struct UserSlots: Sendable {
        var fields: [Int?] = []
        var extras: [(name: String, slot: Int)] = []
        var suspend: Int?
        var entryUUID = 0, entryCSN = 0, modifyTimestamp = 0, whenChanged = 0, usnChanged = 0
    }

    /// Where each attribute sits in a group entry.
    private struct GroupSlots: Sendable {
        var cn = 0, memberUid = 0
        var members: [Int] = []
        var entryUUID = 0, entryCSN = 0, modifyTimestamp = 0, whenChanged = 0, usnChanged = 0
    }

    /// Creates a mapper for `configuration`.
    public init(_ configuration: LDAPConfiguration) {
        self.configuration = configuration
        externalIdAttribute = configuration.mapping.externalId.lowercased()
        externalIdIsBinary = BinaryAttributes.known.contains(externalIdAttribute)

        var userAttributes: [String] = LDAPMappingConfiguration.fields.compactMap { configuration.mapping[$0] }
        userAttributes += configuration.attributes.values.sorted()
        if let suspend = configuration.suspendWhen { userAttributes.append(suspend.attribute) }
        userAttributes += Self.bookkeeping
        userAttributes = Self.unique(userAttributes)
        let lowered = userAttributes.map { $0.lowercased() }
        func slot(_ name: String) -> Int { lowered.firstIndex(of: name.lowercased())! }
        var usersRequest = LDAPSearchRequest(
            base: configuration.users.base, scope: configuration.users.scope == .one ? .one : .sub,
            filter: LDAPFilter.parenthesized(configuration.users.filter), attributes: userAttributes,
            binaryAttributes: Set(lowered).intersection(BinaryAttributes.known))
        // The extra attributes keep every value: with rangeSize, they are asked for in ranges.
        usersRequest.rangeSize = configuration.rangeSize
        if configuration.rangeSize != nil {
            usersRequest.rangedAttributes = Set(configuration.attributes.values.map { $0.lowercased() })
                .subtracting(BinaryAttributes.known).subtracting([externalIdAttribute])
        }
        self.usersRequest = usersRequest
        var users = UserSlots()
        users.fields = LDAPMappingConfiguration.fields.map { field in configuration.mapping[field].map(slot) }
        users.extras = configuration.attributes.sorted { $0.key < $1.key }.map { ($0.key, slot($0.value)) }
        users.suspend = configuration.suspendWhen.map { slot($0.attribute) }
        (users.entryUUID, users.entryCSN, users.modifyTimestamp, users.whenChanged, users.usnChanged) = (
            slot("entryUUID"), slot("entryCSN"), slot("modifyTimestamp"), slot("whenChanged"), slot("uSNChanged")
        )
        self.users = users

        if let groupsConfiguration = configuration.groups {
            let attributes = Self.unique(
                ["cn"] + groupsConfiguration.memberAttributes + ["memberUid"] + Self.bookkeeping)
            let lowered = attributes.map { $0.lowercased() }
            func slot(_ name: String) -> Int { lowered.firstIndex(of: name.lowercased())! }
            var request = LDAPSearchRequest(
                base: groupsConfiguration.base, scope: groupsConfiguration.scope == .one ? .one : .sub,
                filter: LDAPFilter.parenthesized(groupsConfiguration.filter), attributes: attributes)
            request.rangeSize = configuration.rangeSize
            if configuration.rangeSize != nil {
                request.rangedAttributes = Set((groupsConfiguration.memberAttributes + ["memberUid"]).map { $0.lowercased() })
            }
            groupsRequest = request
            var groups = GroupSlots()
            groups.cn = slot("cn")
            groups.memberUid = slot("memberUid")
            groups.members = groupsConfiguration.memberAttributes.map(slot).filter { $0 != groups.memberUid }
            (groups.entryUUID, groups.entryCSN, groups.modifyTimestamp, groups.whenChanged, groups.usnChanged) = (
                slot("entryUUID"), slot("entryCSN"), slot("modifyTimestamp"), slot("whenChanged"), slot("uSNChanged")
            )
            self.groups = groups
        } else {
            groupsRequest = nil
            groups = nil
        }
    }

    /// Maps a person's entry; nil when it cannot be mapped (see ``mapUser(_:syncUUID:)``).
    ///
    /// - Parameter syncUUID: the entryUUID a syncrepl message named the entry by.
    public func user(_ entry: LDAPEntry, syncUUID: String? = nil) -> DirectoryUser? {
        if case .user(let user) = mapUser(entry, syncUUID: syncUUID) { return user }
        return nil
    }

    /// Maps a person's entry, or says why it cannot be: it has no externalId, or its DN or
    /// an attribute the mapping reads is not valid UTF-8.
    ///
    /// - Parameter syncUUID: the entryUUID a syncrepl message named the entry by.
    public func mapUser(_ entry: LDAPEntry, syncUUID: String? = nil) -> UserMapping {
        let layout = usersRequest.layout
        func values(_ slot: Int) -> ArraySlice<String>? { entry.values(slot, of: layout) }
        func unreadable(_ reason: String) -> UserMapping {
            let readable = { (index: Int) -> String? in
                guard let slot = users.fields[index], !entry.undecodable.contains(layout.names[slot]) else { return nil }
                return values(slot)?.first { !$0.isEmpty }
            }
            let normalizedDN = DistinguishedName.normalize(entry.dn)
            let entryUUID = entry.undecodable.contains("entryuuid") ? nil : values(users.entryUUID)?.first
            let guid = externalIdIsBinary ? externalId(of: entry) : nil
            return .unreadable(UnreadableEntry(
                key: syncUUID ?? entryUUID ?? guid ?? normalizedDN, dn: entry.dn, normalizedDN: normalizedDN,
                userName: readable(1), email: readable(2), reason: reason))
        }
        if !entry.undecodable.isEmpty {
            let what = entry.undecodable.map { $0 == "dn" ? "its DN" : $0 }.joined(separator: ", ")
            return unreadable("\(what) \(entry.undecodable.count == 1 ? "is" : "are") not valid UTF-8")
        }
        guard let externalId = externalId(of: entry) else {
            return unreadable("it has no \(configuration.mapping.externalId) (mapping.externalId)")
        }
        func field(_ index: Int) -> String? {
            guard let slot = users.fields[index] else { return nil }
            return values(slot)?.first { !$0.isEmpty }
        }
        var attributes: [String: [String]] = [:]
        for (name, slot) in users.extras {
            if let found = values(slot) { attributes[name] = Array(found) }
        }
        // The syncrepl UUID is most often the externalId (entryUUID): one copy of the text, not two.
        let key = syncUUID ?? values(users.entryUUID)?.first ?? externalId
        // Field order: LDAPMappingConfiguration.fields.
        return .user(DirectoryUser(
            key: key == externalId ? externalId : key,
            dn: entry.dn, normalizedDN: DistinguishedName.normalize(entry.dn), externalId: externalId,
            userName: field(1), email: field(2), displayName: field(3), employeeNumber: field(4),
            department: field(5), title: field(6), managerDN: field(7).map(DistinguishedName.normalize),
            attributes: attributes, suspended: isSuspended(users.suspend.flatMap(values) ?? ArraySlice()),
            version: Self.version(
                csn: values(users.entryCSN), modifyTimestamp: values(users.modifyTimestamp),
                whenChanged: values(users.whenChanged)),
            modifyTimestamp: values(users.modifyTimestamp)?.first,
            usnChanged: values(users.usnChanged)?.first.flatMap(USNWatermark.parse)))
    }

    /// Maps a group's entry.
    public func group(_ entry: LDAPEntry, syncUUID: String? = nil) -> DirectoryGroup {
        let normalizedDN = DistinguishedName.normalize(entry.dn)
        guard let request = groupsRequest, let slots = groups else {
            return DirectoryGroup(
                key: syncUUID ?? normalizedDN, dn: entry.dn, normalizedDN: normalizedDN, cn: entry.first("cn"),
                memberDNs: [], memberUids: [], version: "")
        }
        let layout = request.layout
        func values(_ slot: Int) -> ArraySlice<String>? { entry.values(slot, of: layout) }
        var members: [String] = []
        for slot in slots.members {
            for value in values(slot) ?? ArraySlice() {
                members.append(DistinguishedName.normalize(Self.strippingOptionalUID(value)))
            }
        }
        let uids = (values(slots.memberUid) ?? ArraySlice()).map { $0.lowercased() }
        return DirectoryGroup(
            key: syncUUID ?? values(slots.entryUUID)?.first ?? normalizedDN, dn: entry.dn,
            normalizedDN: normalizedDN, cn: values(slots.cn)?.first, memberDNs: members, memberUids: uids,
            version: Self.version(
                csn: values(slots.entryCSN), modifyTimestamp: values(slots.modifyTimestamp),
                whenChanged: values(slots.whenChanged)),
            modifyTimestamp: values(slots.modifyTimestamp)?.first,
            usnChanged: values(slots.usnChanged)?.first.flatMap(USNWatermark.parse))
    }

    /// The entry's externalId: text, or a binary GUID rendered as a UUID string.
    func externalId(of entry: LDAPEntry) -> String? {
        if externalIdIsBinary, let bytes = entry.binary[externalIdAttribute]?.first {
            return UUIDText.format(bytes, littleEndianFields: true)
        }
        guard let slot = users.fields[0] else { return nil }
        return entry.values(slot, of: usersRequest.layout)?.first { !$0.isEmpty }
    }

    /// Whether `suspendWhen` holds for these values of its attribute. Values compare
    /// case-insensitively, as most directory attributes do (`nsAccountLock: TRUE`).
    func isSuspended(_ values: ArraySlice<String>) -> Bool {
        guard let rule = configuration.suspendWhen else { return false }
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
    static func version(
        csn: ArraySlice<String>?, modifyTimestamp: ArraySlice<String>?, whenChanged: ArraySlice<String>?
    ) -> String {
        if let csn = csn?.max(), let version = DirectoryVersion.fromCSN(csn) { return version }
        for text in [modifyTimestamp?.first, whenChanged?.first].compactMap({ $0 }) {
            if let version = DirectoryVersion.fromGeneralizedTime(text) { return version }
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
