import Testing
import TetherConfig
import TetherCore

/// Agents in the file: several sponsors, `agents.minSponsors`, and policies naming agents that
/// are registered later (SPEC §15).
@Suite struct AgentConfigurationTests {
    @Test func anAgentMayNameSeveralSponsorsAndTheSectionMayRequireThem() throws {
        let result = try #require(loaded(
            """
            \(minimalLDAP)
            agents:
              minSponsors: 2
              declared:
                - { id: support-copilot, kind: delegated, sponsors: [jdoe, mkhan] }
            policies:
              - id: support
                when: { memberOf: support }
                grant: [{ agent: support-copilot, scopes: [tickets:read], resource: "zendesk:queue/all" }]
            """))
        #expect(result.configuration.minSponsors == 2)
        #expect(result.configuration.agents.map(\.sponsors) == [["jdoe", "mkhan"]])
    }

    @Test func aListOfAgentsMeansOneSponsorAtLeastAndKeepsItsPolicySetHash() throws {
        let result = try #require(loaded(
            """
            agents:
              - { id: support-copilot, kind: delegated, sponsor: jdoe }
            """))
        #expect(result.configuration.minSponsors == 1)
        #expect(result.configuration.agents.map(\.sponsors) == [["jdoe"]])
        // `sponsor: x` encodes as before the registry: the hash of an unchanged file stays.
        #expect(result.configuration.policySet.hash == PolicySet(
            agents: [Agent(id: "support-copilot", kind: .delegated, sponsor: "jdoe")], policies: []).hash)
        #expect(CanonicalJSON.encode(result.configuration.agents[0])
            == #"{"grants":[],"id":"support-copilot","kind":"delegated","onSponsorLeave":"quarantine","sponsor":"jdoe"}"#)
    }

    @Test func aPolicyNamingAnAgentNotDeclaredIsAWarningAndKeepsThePolicy() throws {
        let result = try #require(loaded(
            """
            \(minimalLDAP)
            agents:
              - { id: support-copilot, kind: delegated, sponsor: jdoe }
            policies:
              - id: support
                when: { memberOf: support }
                grant:
                  - { agent: support-copilot, scopes: [tickets:read], resource: "zendesk:queue/all" }
                  - { agent: triage-bot, scopes: [tickets:triage], resource: "zendesk:queue/all" }
            """))
        let warning = try #require(result.warnings.first { $0.keyPath == "policies[0].grant[1].agent" })
        expect(warning, keyPath: "policies[0].grant[1].agent", line: 12, [
            "agent 'triage-bot' is not declared here", "until an agent 'triage-bot' is registered",
            "declared agents: support-copilot",
        ])
        #expect(result.configuration.policies.first?.grant.map(\.agent) == ["support-copilot", "triage-bot"])
    }
}
