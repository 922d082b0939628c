import TetherCore

extension PlanningIdentity {
    /// Reads a stored identity's text straight into its planning form, without `JSONDecoder`,
    /// which took a third of a full reconciliation: every identity is read on every run.
    ///
    /// Anything it does not expect (malformed text, a value of another type, a source or a
    /// status it does not know, a missing field) gives nil, and the caller falls back on the
    /// decoder, which reads or rejects the text as it always did.
    static func read(_ text: String) -> Identity? {
        JSONReader.whole(text) { $0.identity { $0.version().map { IdentityFacts(status: nil, version: $0) } } }
    }
}

extension IdentityJSON {
    /// Reads a stored identity's text whole, each source's facts included, without
    /// `JSONDecoder`: a decision reads the person it is about, their correlation candidates
    /// and the managers of their agents, and decoding them was a twentieth of a leaver's CPU.
    ///
    /// Anything it does not expect gives nil, and the caller falls back on the decoder.
    ///
    /// - Parameter sharing: when many identities are read at once, the values they repeat
    ///   (group lists, attributes) are kept once for all of them.
    static func read(_ text: String, sharing: IdentityValues? = nil) -> Identity? {
        JSONReader.whole(text) { $0.identity(sharing: sharing) { $0.facts(sharing: sharing) } }
    }
}

/// The values identities read together repeat, each kept once: a hundred people of one team
/// carry the same group list, and a hundred thousand identities read for a full snapshot
/// held a hundred thousand copies of a few thousand lists.
final class IdentityValues {
    fileprivate var groups: [[UInt8]: Set<String>] = [:]
    fileprivate var attributes: [[UInt8]: [String: [String]]] = [:]

    init() {}

    /// How many distinct group lists and attribute sets are held.
    var heldGroupLists: Int { groups.count }
    var heldAttributeSets: Int { attributes.count }
}

extension JSONReader {
    private typealias Key = PlanningIdentity.Key

    /// An identity, each source's facts read by `facts`.
    mutating func identity(sharing: IdentityValues? = nil, facts: (inout JSONReader) -> IdentityFacts?) -> Identity? {
        var id: String?
        var userName: String?
        var optional: [Key: String] = [:]  // the optional text fields that are present
        var status: IdentityStatus?
        var statusSource: Source?
        var groups: Set<String>?
        var attributes: [String: [String]]?
        var sources: [Source: IdentityFacts]?
        var lastEvents: [Source: String]?
        var isTombstone: Bool?
        let complete = object { reader, key in
            switch Key(rawValue: key) {
            case .id:
                id = reader.string()
                return id != nil
            case .userName:
                userName = reader.string()
                return userName != nil
            case let field? where Self.optionalFields.contains(field):
                guard let value = reader.optionalString() else { return false }
                optional[field] = value
                return true
            case .status:
                status = reader.string().flatMap(IdentityStatus.init(rawValue:))
                return status != nil
            case .statusSource:
                guard let value = reader.optionalString() else { return false }
                guard let raw = value else { return true }
                statusSource = Source(rawValue: raw)
                return statusSource != nil
            case .groups:
                groups = reader.groups(sharing: sharing)
                return groups != nil
            case .attributes:
                attributes = reader.attributes(sharing: sharing)
                return attributes != nil
            case .sources:
                var read: [Source: IdentityFacts] = [:]
                let complete = reader.object { reader, name in
                    guard let source = Source(rawValue: name), let value = facts(&reader) else { return false }
                    read[source] = value
                    return true
                }
                sources = read
                return complete
            case .lastEvents:
                var events: [Source: String] = [:]
                let read = reader.object { reader, name in
                    guard let source = Source(rawValue: name), let event = reader.string() else { return false }
                    events[source] = event
                    return true
                }
                lastEvents = events
                return read
            case .isTombstone:
                isTombstone = reader.bool()
                return isTombstone != nil
            case .some: return false
            case nil: return reader.skipValue()
            }
        }
        guard complete, let id, let userName, let status, let groups, let attributes, let sources, let lastEvents,
            let isTombstone
        else { return nil }
        return Identity(
            id: id, userName: userName, email: optional[.email], displayName: optional[.displayName],
            employeeNumber: optional[.employeeNumber], department: optional[.department],
            title: optional[.title], manager: optional[.manager], status: status,
            statusSource: statusSource, groups: groups, attributes: attributes, sources: sources,
            lastEvents: lastEvents, isTombstone: isTombstone)
    }

    private static let optionalFields: Set<Key> = [.email, .displayName, .employeeNumber, .department, .title, .manager]

    /// One source's facts, every field read.
    mutating func facts(sharing: IdentityValues? = nil) -> IdentityFacts? {
        var optional: [String: String] = [:]  // the optional text fields that are present
        var status: IdentityStatus?
        var groups: Set<String>?
        var attributes: [String: [String]]?
        var version: String?
        let complete = object { reader, key in
            switch key {
            case "externalId", "userName", "email", "displayName", "employeeNumber", "department", "title", "manager":
                guard let value = reader.optionalString() else { return false }
                optional[key] = value
                return true
            case "status":
                guard let value = reader.optionalString() else { return false }
                guard let raw = value else { return true }
                status = IdentityStatus(rawValue: raw)
                return status != nil
            case "groups":
                groups = reader.groups(sharing: sharing)
                return groups != nil
            case "attributes":
                attributes = reader.attributes(sharing: sharing)
                return attributes != nil
            case "version":
                version = reader.string()
                return version != nil
            default:
                return reader.skipValue()
            }
        }
        guard complete, let groups, let attributes, let version else { return nil }
        return IdentityFacts(
            externalId: optional["externalId"], userName: optional["userName"], email: optional["email"],
            displayName: optional["displayName"], employeeNumber: optional["employeeNumber"],
            department: optional["department"], title: optional["title"], manager: optional["manager"],
            status: status, groups: groups, attributes: attributes, version: version)
    }

    /// The `version` of one source's facts; every other key of them is skipped.
    mutating func version() -> String? {
        var version: String?
        let read = object { reader, key in
            guard key == "version" else { return reader.skipValue() }
            version = reader.string()
            return version != nil
        }
        return read ? version : nil
    }

    private mutating func groups(sharing: IdentityValues?) -> Set<String>? {
        guard let sharing else { return strings().map(Set.init) }
        return shared(&sharing.groups) { $0.strings().map(Set.init) }
    }

    private mutating func attributes(sharing: IdentityValues?) -> [String: [String]]? {
        guard let sharing else { return stringLists() }
        return shared(&sharing.attributes) { $0.stringLists() }
    }

    /// An object of string arrays by name.
    mutating func stringLists() -> [String: [String]]? {
        var values: [String: [String]] = [:]
        let read = object { reader, name in
            guard let strings = reader.strings() else { return false }
            values[name] = strings
            return true
        }
        return read ? values : nil
    }

    mutating func strings() -> [String]? {
        var values: [String] = []
        let read = array { reader in
            guard let value = reader.string() else { return false }
            values.append(value)
            return true
        }
        return read ? values : nil
    }
}
