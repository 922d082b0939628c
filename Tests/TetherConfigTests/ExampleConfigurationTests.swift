import Foundation
import Testing
import TetherCore

@testable import TetherConfig

@Suite("config/tether.yaml")
struct ExampleConfigurationTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let examplePath = repository.appendingPathComponent("config/tether.yaml").path

    @Test func loadsWithoutErrorsOrWarnings() throws {
        let loaded = try ConfigurationLoader.load(path: Self.examplePath)
        #expect(loaded.warnings.isEmpty, "\(loaded.warnings.map(\.description).joined(separator: "\n"))")
        let configuration = loaded.configuration
        #expect(configuration.agents.map(\.id) == ["support-copilot", "ledger-bot", "finance-analyst"])
        #expect(configuration.policies.count == 4)
        #expect(configuration.policySet.hash.hasPrefix("sha256:"))
        #expect(configuration.sources.ldap?.url == "ldap://127.0.0.1:3389")
        #expect(configuration.sources.ldap?.users.base == "ou=people,dc=example,dc=com")
        #expect(configuration.sources.scim != nil)
        #expect(configuration.sources.hr?.tolerance == .seconds(300))
        #expect(configuration.targets.map(\.id) == ["gateway"])
        #expect(configuration.targets.first?.maxBackoff == .seconds(300))
    }

    @Test func declaresTheAgentsTheDemoUses() throws {
        let configuration = try ConfigurationLoader.load(path: Self.examplePath).configuration
        let set = configuration.policySet
        let copilot = try #require(set.agent("support-copilot"))
        #expect(copilot.kind == .delegated)
        #expect(copilot.sponsor == "jdoe")
        let ledger = try #require(set.agent("ledger-bot"))
        #expect(ledger.kind == .autonomous)
        #expect(ledger.sponsor == "mkhan")
        #expect(ledger.grants == [StaticGrant(scopes: ["ledger:read"], resource: "erp:ledger/*")])
        #expect(configuration.agents.contains { $0.onSponsorLeave == .transferToManager })
    }

    @Test func policiesExerciseEveryKindOfCondition() throws {
        let configuration = try ConfigurationLoader.load(path: Self.examplePath).configuration
        var kinds = Set<String>()
        func visit(_ condition: Condition) {
            switch condition {
            case .all(let conditions):
                kinds.insert("all")
                conditions.forEach(visit)
            case .any(let conditions):
                kinds.insert("any")
                conditions.forEach(visit)
            case .not(let condition):
                kinds.insert("not")
                visit(condition)
            case .memberOf: kinds.insert("memberOf")
            case .attribute(_, let test):
                switch test {
                case .equals: kinds.insert("equals")
                case .in: kinds.insert("in")
                case .present: kinds.insert("present")
                case .prefix: kinds.insert("prefix")
                case .bitsSet: kinds.insert("bitsSet")
                }
            }
        }
        configuration.policies.map(\.when).forEach(visit)
        #expect(kinds == ["all", "any", "not", "memberOf", "equals", "in", "present", "prefix", "bitsSet"])
        let resources = configuration.policies.flatMap(\.grant).map(\.resource)
        #expect(resources.contains("zendesk:queue/{department}"))
    }

    @Test func relativePathsResolveNextToTheRepository() throws {
        let configuration = try ConfigurationLoader.load(path: Self.examplePath).configuration
        let demo = Self.repository.appendingPathComponent(".tether-demo").standardizedFileURL.path
        #expect(configuration.store.sqlite == demo + "/tether.db")
        #expect(configuration.admin.socket == demo + "/admin.sock")
        #expect(configuration.check.tokenFile == demo + "/check.token")
        #expect(configuration.sources.hr?.secretFiles == [demo + "/hr.secret"])
    }

    @Test func documentsEveryKey() throws {
        let text = try String(contentsOfFile: Self.examplePath, encoding: .utf8)
        let keys =
            ConfigurationReader.topLevelKeys + ConfigurationReader.ldapKeys + LDAPMappingConfiguration.fields
            + ConfigurationReader.conditionKeys + ConfigurationReader.attributeTestKeys
            + [
                "sqlite", "listen", "maxBodyBytes", "socket", "mode", "tokenFile", "precedence", "correlate",
                "base", "filter", "scope", "memberAttributes", "nested", "secretFiles", "tolerance", "id", "kind",
                "sponsor", "onSponsorLeave", "grants", "scopes", "resource", "description", "when", "grant",
                "maxRevocationsPerRun", "maxRevocationRatio", "minGrantsForRatio", "type", "url", "secretFile",
                "orphans", "window", "signingKeyFile", "checkpointInterval", "checkpointTarget",
                "postgres", "passwordFile", "tls", "caFile", "poolSize", "maxWait", "node", "address", "renewInterval",
                "leaseDuration", "maxLag",
            ]
        for key in keys {
            #expect(text.contains("\(key):"), "config/tether.yaml does not mention \(key)")
        }
    }
}
