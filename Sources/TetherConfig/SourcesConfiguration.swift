/// `sources`: where identity facts come from. Each source is off unless configured.
public struct SourcesConfiguration: Sendable, Hashable {
    /// The LDAP directory, read by full scans and syncrepl or polling.
    public var ldap: LDAPConfiguration?
    /// The SCIM 2.0 server for provisioning systems (Okta, Entra, …).
    public var scim: SCIMConfiguration?
    /// The HR webhook `POST /hooks/hr`.
    public var hr: HRConfiguration?

    /// Creates a sources configuration; every source is off by default.
    public init(ldap: LDAPConfiguration? = nil, scim: SCIMConfiguration? = nil, hr: HRConfiguration? = nil) {
        self.ldap = ldap
        self.scim = scim
        self.hr = hr
    }

    /// Whether no source is configured at all, so no identity can ever receive grants.
    public var isEmpty: Bool { ldap == nil && scim == nil && hr == nil }
}

/// `sources.scim`: the SCIM 2.0 endpoint under `/scim/v2`.
public struct SCIMConfiguration: Sendable, Hashable {
    /// Absolute path of the file holding the bearer token SCIM clients present.
    public var tokenFile: String

    /// Creates a SCIM configuration.
    public init(tokenFile: String) {
        self.tokenFile = tokenFile
    }
}

/// `sources.hr`: the signed HR webhook (SPEC §8).
public struct HRConfiguration: Sendable, Hashable {
    /// Absolute paths of the HMAC secrets; any of them verifies a signature, which allows rotation.
    public var secretFiles: [String]
    /// How far a signature's timestamp may be from now.
    public var tolerance: Duration

    /// Creates an HR configuration; the tolerance defaults to five minutes.
    public init(secretFiles: [String], tolerance: Duration = .seconds(300)) {
        self.secretFiles = secretFiles
        self.tolerance = tolerance
    }
}
