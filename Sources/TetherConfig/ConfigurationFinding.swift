/// Where a configuration value lives: the file, its line and column, and its key path.
public struct ConfigurationLocation: Sendable, Hashable, CustomStringConvertible {
    /// The configuration file as it was named to the loader.
    public var file: String
    /// Line number starting at 1; 0 when the problem concerns the whole file.
    public var line: Int
    /// Column number starting at 1; 0 when the problem concerns the whole file.
    public var column: Int
    /// The path to the value, e.g. `policies[2].when.all[0].attribute.in`; empty for the document.
    public var keyPath: String

    /// Creates a location.
    public init(file: String, line: Int, column: Int, keyPath: String) {
        self.file = file
        self.line = line
        self.column = column
        self.keyPath = keyPath
    }

    /// `FILE:LINE:COL`, or `FILE` alone when there is no line.
    public var description: String {
        line > 0 ? "\(file):\(line):\(column)" : file
    }
}

/// One problem found in a configuration file, with where it is and what to do about it.
public struct ConfigurationFinding: Sendable, Hashable, CustomStringConvertible {
    /// How serious a finding is: errors reject the configuration, warnings do not.
    public enum Severity: String, Sendable, Hashable {
        case error, warning
    }

    /// Whether the finding rejects the configuration.
    public var severity: Severity
    /// Where the offending value is.
    public var location: ConfigurationLocation
    /// What is wrong and what is expected instead.
    public var message: String

    /// Creates a finding.
    public init(severity: Severity, location: ConfigurationLocation, message: String) {
        self.severity = severity
        self.location = location
        self.message = message
    }

    /// The configuration file as it was named to the loader.
    public var file: String { location.file }
    /// Line number starting at 1 (0: the whole file).
    public var line: Int { location.line }
    /// Column number starting at 1 (0: the whole file).
    public var column: Int { location.column }
    /// The path to the offending value, e.g. `agents[1].kind`.
    public var keyPath: String { location.keyPath }

    /// `FILE:LINE:COL: error: KEYPATH: message`, the shape compilers use so editors can jump to it.
    public var description: String {
        let path = location.keyPath.isEmpty ? "" : "\(location.keyPath): "
        return "\(location): \(severity.rawValue): \(path)\(message)"
    }
}

extension Array where Element == ConfigurationFinding {
    /// The findings in file order (line, then column), stable for findings at the same place.
    func sortedByLocation() -> [ConfigurationFinding] {
        enumerated()
            .sorted { lhs, rhs in
                let l = lhs.element.location
                let r = rhs.element.location
                if l.line != r.line { return l.line < r.line }
                if l.column != r.column { return l.column < r.column }
                return lhs.offset < rhs.offset
            }
            .map(\.element)
    }
}
