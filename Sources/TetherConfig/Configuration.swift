import TetherCore

/// A whole Tether configuration (SPEC §4), typed and validated, with absolute paths.
///
/// `Configuration()` is the configuration of an empty file: every SPEC default, no sources,
/// agents, policies or targets.
public struct Configuration: Sendable, Hashable {
    /// Where state and the audit log are kept.
    public var store: StoreConfiguration
    /// The public HTTP listener.
    public var http: HTTPConfiguration
    /// The operator socket.
    public var admin: AdminConfiguration
    /// The `/v1/check` endpoint; off without a token file.
    public var check: CheckConfiguration
    /// Source precedence and correlation keys.
    public var lifecycle: LifecycleConfiguration
    /// The configured identity sources.
    public var sources: SourcesConfiguration
    /// Declared agents, in file order.
    public var agents: [Agent]
    /// Declared policies, in file order.
    public var policies: [Policy]
    /// Limits past which a plan is held for approval.
    public var safety: SafetyLimits
    /// External grant targets, in file order.
    public var targets: [TargetConfiguration]
    /// Bounds on operators' exceptions to policy.
    public var exceptions: ExceptionsConfiguration
    /// Every `memberOf` in the policies with where it is written, for ``unknownGroupWarnings(knownGroups:)``.
    public var groupReferences: [GroupReference]
    /// Signed checkpoints of the audit chain.
    public var audit: AuditConfiguration
    /// How last uses of grants and agents reach the store (SPEC §15 "Usage").
    public var usage = UsageConfiguration()
    /// Access reviews: when a grant counts as unused, the links' address, where they are sent.
    public var reviews = ReviewsConfiguration()
    /// Several daemons on one PostgreSQL store: this node's name, its lease and lag limits.
    public var ha = HAConfiguration()
    /// How many sponsors every agent needs (`agents.minSponsors`, SPEC §15): configured
    /// agents must list that many; registered ones need that many active identities.
    public var minSponsors = 1

    /// Creates a configuration; every argument defaults to SPEC §4's value.
    public init(
        store: StoreConfiguration = StoreConfiguration(), http: HTTPConfiguration = HTTPConfiguration(),
        admin: AdminConfiguration = AdminConfiguration(), check: CheckConfiguration = CheckConfiguration(),
        lifecycle: LifecycleConfiguration = LifecycleConfiguration(),
        sources: SourcesConfiguration = SourcesConfiguration(), agents: [Agent] = [], policies: [Policy] = [],
        safety: SafetyLimits = SafetyLimits(), targets: [TargetConfiguration] = [],
        exceptions: ExceptionsConfiguration = ExceptionsConfiguration(), groupReferences: [GroupReference] = [],
        audit: AuditConfiguration = AuditConfiguration()
    ) {
        self.exceptions = exceptions
        self.store = store
        self.http = http
        self.admin = admin
        self.check = check
        self.lifecycle = lifecycle
        self.sources = sources
        self.agents = agents
        self.policies = policies
        self.safety = safety
        self.targets = targets
        self.groupReferences = groupReferences
        self.audit = audit
    }

    /// The agents and policies in force, with the hash that names them in lineage and audit.
    public var policySet: PolicySet { PolicySet(agents: agents, policies: policies) }

    /// A warning for each `memberOf` naming a group no source knows (compared case-insensitively).
    ///
    /// A group that does not exist yet is not an error (SPEC §4): policies may be written before
    /// the directory catches up. Call this once the sources have reported their groups.
    public func unknownGroupWarnings(knownGroups: Set<String>) -> [ConfigurationFinding] {
        let known = Set(knownGroups.map { $0.lowercased() })
        return groupReferences.filter { !known.contains($0.group.lowercased()) }.map { reference in
            ConfigurationFinding(
                severity: .warning, location: reference.location,
                message: "group '\(reference.group)' is not known to any source yet; policy '\(reference.policy)' "
                    + "matches nobody through it until the group exists (check its cn or DN)")
        }
    }
}

/// One `memberOf` condition of a policy and where it is written.
public struct GroupReference: Sendable, Hashable {
    /// The group as written: an LDAP cn or DN, or a SCIM displayName.
    public var group: String
    /// The id of the policy whose condition names it.
    public var policy: String
    /// Where the `memberOf` value is written.
    public var location: ConfigurationLocation

    /// Creates a group reference.
    public init(group: String, policy: String, location: ConfigurationLocation) {
        self.group = group
        self.policy = policy
        self.location = location
    }
}

/// What the loader returns: the configuration and the warnings that did not reject it.
public struct LoadedConfiguration: Sendable {
    /// The validated configuration.
    public var configuration: Configuration
    /// Findings of severity `warning`, in file order.
    public var warnings: [ConfigurationFinding]
    /// The configuration file as it was named to the loader.
    public var file: String

    /// Creates a loaded configuration.
    public init(configuration: Configuration, warnings: [ConfigurationFinding], file: String) {
        self.configuration = configuration
        self.warnings = warnings
        self.file = file
    }

    /// See ``Configuration/unknownGroupWarnings(knownGroups:)``.
    public func unknownGroupWarnings(knownGroups: Set<String>) -> [ConfigurationFinding] {
        configuration.unknownGroupWarnings(knownGroups: knownGroups)
    }
}
