import TetherCore

/// `audit`: signed checkpoints of the audit chain (SPEC §18, docs/audit.md).
public struct AuditConfiguration: Sendable, Hashable {
    /// The checkpoint interval when `audit.checkpointInterval` is not set.
    public static let defaultCheckpointInterval: Duration = .seconds(60)
    /// The id the checkpoint target goes by in logs, metrics and its delivery record.
    public static let checkpointTargetID = "audit.checkpointTarget"

    /// Absolute path of the Ed25519 private key (PEM, PKCS#8) that signs checkpoints; nil
    /// makes none.
    public var signingKeyFile: String?
    /// Where `signingKeyFile` is written, so a key that cannot be used is reported there.
    public var signingKeyLocation: ConfigurationLocation?
    /// How often the chain head is signed, when records were added since the last checkpoint.
    public var checkpointInterval: Duration
    /// Where each checkpoint is POSTed as JSON, signed like a grant target's requests; nil
    /// sends none. Only `url`, `secretFile`, `timeout` and `maxBackoff` apply.
    public var checkpointTarget: TargetConfiguration?

    /// Creates an audit configuration; by default no checkpoints are made.
    public init(
        signingKeyFile: String? = nil, signingKeyLocation: ConfigurationLocation? = nil,
        checkpointInterval: Duration = AuditConfiguration.defaultCheckpointInterval, checkpointTarget: TargetConfiguration? = nil
    ) {
        self.signingKeyFile = signingKeyFile
        self.signingKeyLocation = signingKeyLocation
        self.checkpointInterval = checkpointInterval
        self.checkpointTarget = checkpointTarget
    }

    /// The signing key, read from `signingKeyFile`; nil when none is configured. A key that
    /// cannot be used is a ``ConfigurationError`` located at `audit.signingKeyFile` (the file
    /// is named, its content never).
    public func signingKey(file: String) throws(ConfigurationError) -> AuditSigningKey? {
        guard let signingKeyFile else { return nil }
        do throws(AuditKeyProblem) {
            return try AuditSigningKey.read(signingKeyFile)
        } catch {
            let location =
                signingKeyLocation ?? ConfigurationLocation(file: file, line: 0, column: 0, keyPath: "audit.signingKeyFile")
            throw ConfigurationError(
                code: .invalidConfiguration, file: file,
                findings: [ConfigurationFinding(severity: .error, location: location, message: error.description)])
        }
    }
}

extension AuditConfiguration {
    /// Equal when the settings are: where `signingKeyFile` is written does not count, so a
    /// reload of a file edited above it is not taken for a change of key.
    public static func == (lhs: AuditConfiguration, rhs: AuditConfiguration) -> Bool {
        lhs.signingKeyFile == rhs.signingKeyFile && lhs.checkpointInterval == rhs.checkpointInterval
            && lhs.checkpointTarget == rhs.checkpointTarget
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(signingKeyFile)
        hasher.combine(checkpointInterval)
        hasher.combine(checkpointTarget)
    }
}

extension ConfigurationReader {
    func readAudit(_ node: ConfigNode) -> AuditConfiguration {
        var audit = AuditConfiguration()
        guard let map = node.mapping(allowed: ["signingKeyFile", "checkpointInterval", "checkpointTarget"]) else { return audit }
        if let keyNode = map.optional("signingKeyFile") {
            audit.signingKeyFile = resolvedPath(keyNode)
            audit.signingKeyLocation = keyNode.location
        }
        if let intervalNode = map.optional("checkpointInterval"), let interval = intervalNode.duration() {
            if interval < .seconds(1) || interval > .seconds(86_400) {
                intervalNode.error(
                    "checkpoint interval \(ConfigurationDuration.format(interval)) is outside 1s…1d; "
                        + "write how often to sign the chain head, e.g. 1m")
            } else {
                audit.checkpointInterval = interval
            }
        }
        if let targetNode = map.optional("checkpointTarget") {
            audit.checkpointTarget = readPostTarget(
                targetNode, id: AuditConfiguration.checkpointTargetID,
                hint: "where checkpoints are POSTed, e.g. https://audit.example.com/checkpoints")
            if audit.signingKeyFile == nil, !map.contains("signingKeyFile") {
                targetNode.error("a checkpoint target needs checkpoints: set audit.signingKeyFile to an Ed25519 key")
            }
        }
        return audit
    }
}
