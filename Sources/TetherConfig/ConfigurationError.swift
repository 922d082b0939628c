/// Why a configuration was rejected: every error found in one pass, each with its location.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure.
    public enum Code: String, Sendable, Hashable {
        /// The file could not be read (missing, a directory, no permission, not UTF-8).
        case unreadableFile
        /// The text is not valid YAML.
        case invalidYAML
        /// The YAML is well formed but does not describe a valid configuration.
        case invalidConfiguration
    }

    /// What kind of failure this is.
    public var code: Code
    /// The configuration file as it was named to the loader.
    public var file: String
    /// Every finding, errors and warnings, in file order.
    public var findings: [ConfigurationFinding]

    /// Creates an error from its findings, which are put in file order.
    public init(code: Code, file: String, findings: [ConfigurationFinding]) {
        self.code = code
        self.file = file
        self.findings = findings.sortedByLocation()
    }

    /// The findings that reject the configuration.
    public var errors: [ConfigurationFinding] { findings.filter { $0.severity == .error } }

    /// One line per finding, `FILE:LINE:COL: error: KEYPATH: message`, errors and warnings in file order.
    public var description: String {
        findings.map(\.description).joined(separator: "\n")
    }
}
