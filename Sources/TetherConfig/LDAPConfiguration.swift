import TetherCore

/// How the LDAP source notices changes between full scans.
public enum LDAPChangeDetection: String, Sendable, Hashable, CaseIterable {
    /// syncrepl (RFC 4533) when the server offers it, else polling.
    case auto
    /// syncrepl only; the source is degraded when the server refuses it.
    case syncrepl
    /// Poll `modifyTimestamp` every `pollInterval`.
    case poll
}

/// The depth of an LDAP search below its base.
public enum LDAPSearchScope: String, Sendable, Hashable, CaseIterable {
    /// The whole subtree below the base.
    case sub
    /// Only the base's immediate children.
    case one
}

/// `sources.ldap.users`: where people are found.
public struct LDAPUsersConfiguration: Sendable, Hashable {
    /// The filter used when `users.filter` is not set.
    public static let defaultFilter = "(objectClass=inetOrgPerson)"

    /// The DN people are found under.
    public var base: String
    /// The RFC 4515 filter that selects people.
    public var filter: String
    /// How deep below `base` to search.
    public var scope: LDAPSearchScope

    /// Creates a users search.
    public init(base: String, filter: String = LDAPUsersConfiguration.defaultFilter, scope: LDAPSearchScope = .sub) {
        self.base = base
        self.filter = filter
        self.scope = scope
    }
}

/// `sources.ldap.groups`: where groups are found and how their members are listed.
public struct LDAPGroupsConfiguration: Sendable, Hashable {
    /// The filter used when `groups.filter` is not set.
    public static let defaultFilter = "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))"

    /// The DN groups are found under.
    public var base: String
    /// The RFC 4515 filter that selects groups.
    public var filter: String
    /// How deep below `base` to search.
    public var scope: LDAPSearchScope
    /// Attributes holding member DNs.
    public var memberAttributes: [String]
    /// Whether membership is followed through groups that are members of groups.
    public var nested: Bool

    /// Creates a groups search.
    public init(
        base: String, filter: String = LDAPGroupsConfiguration.defaultFilter, scope: LDAPSearchScope = .sub,
        memberAttributes: [String] = ["member", "uniqueMember"], nested: Bool = true
    ) {
        self.base = base
        self.filter = filter
        self.scope = scope
        self.memberAttributes = memberAttributes
        self.nested = nested
    }
}

/// `sources.ldap.mapping`: which LDAP attribute feeds each identity field.
///
/// Keys left out of the configuration keep these defaults (OpenLDAP `inetOrgPerson` names).
public struct LDAPMappingConfiguration: Sendable, Hashable {
    /// The identity fields a mapping may name, in SPEC order.
    public static let fields = [
        "externalId", "userName", "email", "displayName", "employeeNumber", "department", "title", "manager",
    ]

    /// The stable key (never the DN), e.g. `entryUUID` or `objectGUID`.
    public var externalId: String
    /// The login name grants are issued to, e.g. `uid` or `sAMAccountName`.
    public var userName: String
    /// The e-mail address, used for correlation.
    public var email: String
    /// The name shown to people.
    public var displayName: String
    /// The HR number, used for correlation.
    public var employeeNumber: String
    /// The department, often used in `{department}` templates.
    public var department: String
    /// The job title.
    public var title: String
    /// An attribute holding the manager's DN.
    public var manager: String

    /// Creates a mapping; the defaults are SPEC §4's.
    public init(
        externalId: String = "entryUUID", userName: String = "uid", email: String = "mail",
        displayName: String = "cn", employeeNumber: String = "employeeNumber",
        department: String = "departmentNumber", title: String = "title", manager: String = "manager"
    ) {
        self.externalId = externalId
        self.userName = userName
        self.email = email
        self.displayName = displayName
        self.employeeNumber = employeeNumber
        self.department = department
        self.title = title
        self.manager = manager
    }

    /// The LDAP attribute for an identity field named as in ``fields``.
    public subscript(field: String) -> String? {
        get {
            switch field {
            case "externalId": externalId
            case "userName": userName
            case "email": email
            case "displayName": displayName
            case "employeeNumber": employeeNumber
            case "department": department
            case "title": title
            case "manager": manager
            default: nil
            }
        }
        set {
            guard let newValue else { return }
            switch field {
            case "externalId": externalId = newValue
            case "userName": userName = newValue
            case "email": email = newValue
            case "displayName": displayName = newValue
            case "employeeNumber": employeeNumber = newValue
            case "department": department = newValue
            case "title": title = newValue
            case "manager": manager = newValue
            default: break
            }
        }
    }
}

/// `sources.ldap.suspendWhen`: an entry that passes this test is a suspended identity.
public struct LDAPSuspendConfiguration: Sendable, Hashable {
    /// The LDAP attribute tested, e.g. `pwdAccountLockedTime` or `userAccountControl`.
    public var attribute: String
    /// The test the attribute's values must pass.
    public var test: AttributeTest

    /// Creates a suspension rule.
    public init(attribute: String, test: AttributeTest) {
        self.attribute = attribute
        self.test = test
    }
}

/// `sources.ldap`: the directory Tether reads people and groups from.
public struct LDAPConfiguration: Sendable, Hashable {
    /// `ldap://host[:port]` or `ldaps://host[:port]`.
    public var url: String
    /// Upgrade an `ldap://` connection with StartTLS.
    public var startTLS: Bool
    /// Verify the server certificate; turning it off must be explicit and is warned about.
    public var tlsVerify: Bool
    /// Absolute path of the CA bundle that verifies the server; nil uses the system's.
    public var caFile: String?
    /// The DN to bind as; nil binds anonymously.
    public var bindDN: String?
    /// Absolute path of the file holding the bind password.
    public var bindPasswordFile: String?
    /// Where people are found.
    public var users: LDAPUsersConfiguration
    /// Where groups are read; nil reads none, and `memberOf` then matches no LDAP identity.
    public var groups: LDAPGroupsConfiguration?
    /// Which LDAP attribute feeds each identity field.
    public var mapping: LDAPMappingConfiguration
    /// Extra identity attributes: identity attribute name → LDAP attribute.
    public var attributes: [String: String]
    /// A test that marks an entry as suspended; nil: entries are active while present.
    public var suspendWhen: LDAPSuspendConfiguration?
    /// How changes are noticed between full scans.
    public var changeDetection: LDAPChangeDetection
    /// How often `modifyTimestamp` is polled when polling.
    public var pollInterval: Duration
    /// How often the whole directory is read and reconciled.
    public var fullScanInterval: Duration
    /// Entries per page of a paged search (RFC 2696).
    public var pageSize: Int
    /// Limit for connecting, binding and each search page.
    public var timeout: Duration
    /// Active Directory: ask for multi-valued attributes (group members, extra attributes)
    /// in ranges of this many values from the first request; nil asks for them whole and
    /// follows the ranges only when the server cuts them short (`MaxValRange`).
    public var rangeSize: Int?

    /// Creates an LDAP configuration with SPEC §4 defaults.
    public init(
        url: String, startTLS: Bool = false, tlsVerify: Bool = true, caFile: String? = nil,
        bindDN: String? = nil, bindPasswordFile: String? = nil, users: LDAPUsersConfiguration,
        groups: LDAPGroupsConfiguration? = nil, mapping: LDAPMappingConfiguration = LDAPMappingConfiguration(),
        attributes: [String: String] = [:], suspendWhen: LDAPSuspendConfiguration? = nil,
        changeDetection: LDAPChangeDetection = .auto, pollInterval: Duration = .seconds(30),
        fullScanInterval: Duration = .seconds(900), pageSize: Int = 500, timeout: Duration = .seconds(30),
        rangeSize: Int? = nil
    ) {
        self.url = url
        self.startTLS = startTLS
        self.tlsVerify = tlsVerify
        self.caFile = caFile
        self.bindDN = bindDN
        self.bindPasswordFile = bindPasswordFile
        self.users = users
        self.groups = groups
        self.mapping = mapping
        self.attributes = attributes
        self.suspendWhen = suspendWhen
        self.changeDetection = changeDetection
        self.pollInterval = pollInterval
        self.fullScanInterval = fullScanInterval
        self.pageSize = pageSize
        self.timeout = timeout
        self.rangeSize = rangeSize
    }

    /// Whether the URL is `ldaps://` (TLS from the first byte).
    public var usesLDAPS: Bool { url.lowercased().hasPrefix("ldaps://") }
}
