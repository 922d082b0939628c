import Testing
import TetherConfig

/// The file name findings carry in these tests; its folder anchors relative paths.
let testFile = "/srv/tether/conf/tether.yaml"

/// The error `yaml` is rejected with, recording an issue when it loads.
func rejection(_ yaml: String, file: String = testFile, sourceLocation: SourceLocation = #_sourceLocation)
    -> ConfigurationError?
{
    do {
        let loaded = try ConfigurationLoader.load(yaml: yaml, file: file)
        Issue.record(
            "expected the configuration to be rejected, it loaded: \(loaded.configuration)",
            sourceLocation: sourceLocation)
        return nil
    } catch {
        return error
    }
}

/// The configuration `yaml` loads to, recording an issue with every finding when it is rejected.
func loaded(_ yaml: String, file: String = testFile, sourceLocation: SourceLocation = #_sourceLocation)
    -> LoadedConfiguration?
{
    do {
        return try ConfigurationLoader.load(yaml: yaml, file: file)
    } catch {
        Issue.record("expected the configuration to load:\n\(error)", sourceLocation: sourceLocation)
        return nil
    }
}

/// Asserts that `error` holds exactly one error, at `keyPath` on `line`, whose message contains `fragments`.
@discardableResult
func expectSingleError(
    _ error: ConfigurationError?, keyPath: String, line: Int, column: Int? = nil, _ fragments: String...,
    sourceLocation: SourceLocation = #_sourceLocation
) -> ConfigurationFinding? {
    guard let error else { return nil }
    #expect(error.errors.count == 1, "expected one error, got:\n\(error)", sourceLocation: sourceLocation)
    guard let finding = error.errors.first else { return nil }
    expect(finding, keyPath: keyPath, line: line, column: column, fragments, sourceLocation: sourceLocation)
    return finding
}

/// Asserts where a finding is and what its message says.
func expect(
    _ finding: ConfigurationFinding, keyPath: String, line: Int, column: Int? = nil, _ fragments: [String],
    sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(finding.keyPath == keyPath, "\(finding)", sourceLocation: sourceLocation)
    #expect(finding.line == line, "\(finding)", sourceLocation: sourceLocation)
    if let column {
        #expect(finding.column == column, "\(finding)", sourceLocation: sourceLocation)
    }
    #expect(finding.file == testFile || finding.file.hasSuffix(".yaml"), sourceLocation: sourceLocation)
    for fragment in fragments {
        #expect(finding.message.contains(fragment), "«\(fragment)» not in: \(finding)", sourceLocation: sourceLocation)
    }
}

/// The smallest valid LDAP source, for tests that need one.
let minimalLDAP = """
    sources:
      ldap:
        url: ldap://127.0.0.1:3389
        users: { base: "ou=people,dc=example,dc=com" }
    """
