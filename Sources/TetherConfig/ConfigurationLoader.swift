import Foundation

/// Reads a Tether configuration file and validates it completely (SPEC §4).
///
/// Every problem is reported in one pass with its file, line, column and key path; the
/// loader records secret file paths but never opens them.
public enum ConfigurationLoader {
    /// The configuration path SPEC §10 uses when none is given: `$TETHER_CONFIG`, else `/etc/tether/tether.yaml`.
    public static func defaultPath(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let path = environment["TETHER_CONFIG"], !path.isEmpty { return path }
        return "/etc/tether/tether.yaml"
    }

    /// Loads the configuration file at `path`; relative paths inside it are resolved against its folder.
    ///
    /// - Throws: ``ConfigurationError`` listing every error found, or why the file cannot be read.
    public static func load(path: String) throws(ConfigurationError) -> LoadedConfiguration {
        let absolute = ConfigurationReader.absolutePath(path, relativeTo: FileManager.default.currentDirectoryPath)
        var isDirectory: ObjCBool = false
        let problem: String?
        if !FileManager.default.fileExists(atPath: absolute, isDirectory: &isDirectory) {
            problem = "no such file; pass --config PATH or set TETHER_CONFIG"
        } else if isDirectory.boolValue {
            problem = "it is a directory, not a YAML file"
        } else if !FileManager.default.isReadableFile(atPath: absolute) {
            problem = "permission denied; run as a user that may read it"
        } else {
            problem = nil
        }
        if let problem {
            throw unreadable(path, problem)
        }
        guard let data = FileManager.default.contents(atPath: absolute) else {
            throw unreadable(path, "it could not be read")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw unreadable(path, "it is not UTF-8 text")
        }
        return try load(yaml: text, file: path)
    }

    /// Loads configuration text as if it were the file `file`, which names it in findings and
    /// whose folder anchors relative paths (the current directory's, when `file` is relative).
    ///
    /// - Throws: ``ConfigurationError`` listing every error found.
    public static func load(yaml: String, file: String) throws(ConfigurationError) -> LoadedConfiguration {
        let document = try YAMLDocument.compose(yaml, file: file)
        let absolute = ConfigurationReader.absolutePath(file, relativeTo: FileManager.default.currentDirectoryPath)
        let baseDirectory = ConfigurationReader.absolutePath("..", relativeTo: absolute)
        let log = FindingLog(file: file, edits: document.edits)
        let reader = ConfigurationReader(log: log, baseDirectory: baseDirectory)
        let configuration = reader.readConfiguration(document.root)
        if log.hasErrors {
            throw ConfigurationError(code: .invalidConfiguration, file: file, findings: log.findings)
        }
        return LoadedConfiguration(
            configuration: configuration, warnings: log.findings.sortedByLocation(), file: file)
    }

    private static func unreadable(_ path: String, _ problem: String) -> ConfigurationError {
        ConfigurationError(
            code: .unreadableFile, file: path,
            findings: [
                ConfigurationFinding(
                    severity: .error, location: ConfigurationLocation(file: path, line: 0, column: 0, keyPath: ""),
                    message: "cannot read the configuration file: \(problem)")
            ])
    }
}
