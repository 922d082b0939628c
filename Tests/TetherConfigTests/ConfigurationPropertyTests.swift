import Foundation
import PropertyInput
import Testing
import TetherConfig

/// Valid configurations the mutator starts from: the example file and smaller ones in the
/// shapes the loader tests use (flow and block style, every section).
private let corpus: [String] = [
    (try? String(contentsOfFile: ExampleConfigurationTests.examplePath, encoding: .utf8)) ?? "",
    minimalLDAP,
    """
    store: { sqlite: ../state/tether.db }
    admin: { socket: ./run/admin.sock, mode: "0600" }
    http: { listen: "[::1]:9090", maxBodyBytes: 65536 }
    check: { tokenFile: check.token }
    lifecycle: { precedence: [hr, scim, ldap], correlate: [employeeNumber, email] }
    safety: { maxRevocationsPerRun: 50, maxRevocationRatio: 0.2, minGrantsForRatio: 10 }
    """,
    """
    \(minimalLDAP)
        mapping: { externalId: objectGUID, userName: sAMAccountName }
        suspendWhen: { attribute: { name: userAccountControl, bitsSet: 0x2 } }
        groups: { base: "ou=groups,dc=example,dc=com", nested: false }
        pollInterval: 30s
        fullScanInterval: 15m
      scim: { tokenFile: scim.token }
      hr: { secretFiles: [hr.secret, ../old/hr.secret], tolerance: 5m }
    targets:
      - { id: gateway, type: http, url: "https://gw.example.com/grants", secretFile: gateway.secret, timeout: 500ms }
    """,
    """
    agents:
      - { id: support-copilot, kind: delegated, sponsor: jdoe }
      - id: ledger-bot
        kind: autonomous
        sponsor: mkhan
        onSponsorLeave: transferToManager
        grants: [{ scopes: [ledger:read], resource: "erp:ledger/*" }]
    policies:
      - id: support
        description: Support staff
        when:
          all:
            - memberOf: Support
            - not: { attribute: { name: employeeType, equals: contractor } }
            - any: [{ attribute: { name: department, in: [Support, Sales] } }, { attribute: { name: title, matches: "^Lead" } }]
        grant: [{ agent: support-copilot, scopes: [tickets:read, tickets:write], resource: "zendesk:queue/{department}" }]
    """,
]

private let tokens = [
    ":", ": ", "- ", "\n", "\n  ", "  ", "\t", "{", "}", "[", "]", ",", "#", "\"", "'", "&a ", "*a", "!!str ", "!!binary ", "? ",
    "|\n", ">-\n", "---\n", "...\n", "~", "null", "true", "0x", "0o17", "1e3", ".inf", "30s", "-5m", "999999999999999999999d",
    "sources:", "ldap:", "agents:", "policies:", "when:", "not:", "all:", "any:", "grant:", "<<: ", "%YAML 1.2\n",
]

private let nesting = [
    (open: "[", close: "]", core: "1"),
    (open: "{a: ", close: "}", core: "b"),
    (open: "- ", close: "", core: "x"),
    (open: "policies: [{id: p, when: ", close: "}]", core: "{memberOf: x}"),
    (open: "{not: ", close: "}", core: "{memberOf: x}"),
]

/// The configuration loader over random and mutated YAML: it loads, or it refuses with every
/// finding located in the file, and never crashes.
///
/// The property prints its seed; `TETHER_PROPERTY_SEED=N` replays a run.
@Suite struct ConfigurationPropertyTests {
    @Test func loaderLoadsOrReportsLocatedFindings() {
        let seed = propertySeed("configuration loader")
        let cases = 2_000
        var mutator = InputMutator(seed: seed, corpus: corpus, tokens: tokens, nesting: nesting)
        var failures = PropertyFailures(seed: seed)
        var outcomes: [String: Int] = [:]
        for number in 0..<cases {
            let (bytes, strategy) = mutator.next()
            let text = String(decoding: bytes, as: UTF8.self)
            let context = "case \(number) (\(strategy)): \(bytes.quoted())"
            do {
                let loaded = try ConfigurationLoader.load(yaml: text, file: testFile)
                outcomes["loaded", default: 0] += 1
                failures.check(loaded.warnings.allSatisfy { $0.file == testFile && $0.severity == .warning && $0.line >= 1 }, context)
            } catch {
                outcomes[error.code.rawValue, default: 0] += 1
                failures.check(error.file == testFile && !error.errors.isEmpty, "\(error); \(context)")
                for finding in error.findings {
                    failures.check(finding.file == testFile && !finding.message.isEmpty, "\(finding); \(context)")
                    if error.code != .unreadableFile {
                        // A finding about the text or a value names its line and column.
                        failures.check(finding.line >= 1 && finding.column >= 1, "\(finding); \(context)")
                    }
                }
            }
        }
        failures.finish("configuration loader: \(cases) inputs, \(outcomes.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", "))")
        #expect(outcomes["loaded", default: 0] > 20, "seed \(seed): \(outcomes)")
        #expect(outcomes[ConfigurationError.Code.invalidConfiguration.rawValue, default: 0] > 20, "seed \(seed): \(outcomes)")
    }
}

/// The inputs the property found, as fixed cases.
@Suite struct ConfigurationRegressionTests {
    /// Past 100 duplicate keys the loader gave up with a finding on no line ("too many
    /// duplicate keys to report"); it now names the last duplicate it found.
    @Test func aHundredDuplicateKeysAreReportedWithALine() throws {
        let yaml = "http:\n" + String(repeating: "  listen: 127.0.0.1:8080\n", count: 150)
        let error = try #require(rejection(yaml))
        #expect(error.code == .invalidYAML)
        expectSingleError(error, keyPath: "", line: 101, column: 3, "duplicate key 'listen'", "at least 100 duplicate keys")
    }
}
