import Testing
import TetherConfig

@Suite("rejected configurations")
struct BrokenConfigurationTests {
    @Test func unknownTopLevelKey() {
        let error = rejection(
            """
            store:
              sqlite: /var/lib/tether/tether.db
            htp:
              listen: 127.0.0.1:8080
            """)
        expectSingleError(error, keyPath: "htp", line: 3, column: 1, "unknown key 'htp'", "did you mean 'http'?")
        #expect(error?.code == .invalidConfiguration)
    }

    @Test func unknownNestedKey() {
        let error = rejection(
            """
            sources:
              ldap:
                url: ldap://127.0.0.1:3389
                users:
                  base: ou=people,dc=example,dc=com
                  filtr: (objectClass=person)
            """)
        expectSingleError(
            error, keyPath: "sources.ldap.users.filtr", line: 6, column: 7, "unknown key 'filtr'",
            "did you mean 'filter'?", "base, filter, scope")
    }

    @Test func wrongTypes() {
        let error = rejection(
            """
            http:
              maxBodyBytes: lots
            agents:
              id: support-copilot
            """)
        let errors = error?.errors ?? []
        #expect(errors.count == 2, "\(String(describing: error))")
        guard errors.count == 2 else { return }
        expect(errors[0], keyPath: "http.maxBodyBytes", line: 2, ["expected a number of bytes, found 'lots'"])
        expect(errors[1], keyPath: "agents", line: 4, ["expected a list of agents, or a mapping with minSponsors and declared, found a mapping"])
    }

    @Test func missingRequiredKey() {
        let error = rejection(
            """
            agents:
              - id: support-copilot
                sponsor: jdoe
            """)
        expectSingleError(
            error, keyPath: "agents[0].kind", line: 2, "missing required key 'kind'", "delegated", "autonomous")
    }

    @Test func duplicateAgentID() {
        let error = rejection(
            """
            \(minimalLDAP)
            agents:
              - id: ledger-bot
                kind: autonomous
                sponsor: mkhan
                grants: [{ scopes: [ledger:read], resource: "erp:ledger/*" }]
              - id: ledger-bot
                kind: autonomous
                sponsor: jdoe
                grants: [{ scopes: [ledger:write], resource: "erp:ledger/*" }]
            """)
        expectSingleError(
            error, keyPath: "agents[1].id", line: 10, column: 9, "duplicate agent id 'ledger-bot'",
            "already declared at agents[0] (line 6)")
    }

    @Test func duplicatePolicyID() {
        let error = rejection(
            """
            \(minimalLDAP)
            agents:
              - { id: support-copilot, kind: delegated, sponsor: jdoe }
            policies:
              - id: support
                when: { memberOf: support }
                grant: [{ agent: support-copilot, scopes: [tickets:read], resource: "zendesk:queue/all" }]
              - id: support
                when: { memberOf: success }
                grant: [{ agent: support-copilot, scopes: [tickets:read], resource: "zendesk:queue/all" }]
            """)
        expectSingleError(
            error, keyPath: "policies[1].id", line: 11, "duplicate policy id 'support'", "policies[0] (line 8)")
    }

    @Test func duplicateTargetID() {
        let error = rejection(
            """
            targets:
              - { id: gateway, type: http, url: "http://127.0.0.1:9400/grants", secretFile: a.secret }
              - { id: gateway, type: http, url: "http://127.0.0.1:9500/grants", secretFile: b.secret }
            """)
        expectSingleError(error, keyPath: "targets[1].id", line: 3, "duplicate target id 'gateway'", "line 2")
    }

    @Test func policyAgentThatIsNotAnIdentifier() {
        let error = rejection(
            """
            \(minimalLDAP)
            agents:
              - { id: support-copilot, kind: delegated, sponsor: jdoe }
            policies:
              - id: support
                when:
                  all:
                    - memberOf: support
                grant:
                  - agent: "suport copilot"
                    scopes: [tickets:read]
                    resource: "zendesk:queue/{department}"
            """)
        expectSingleError(error, keyPath: "policies[0].grant[0].agent", line: 13, column: 16, "invalid agent id 'suport copilot'")
    }

    @Test func sponsorsBelowMinSponsorsAndNamedTwice() {
        let error = rejection(
            """
            \(minimalLDAP)
            agents:
              minSponsors: 2
              declared:
                - { id: support-copilot, kind: delegated, sponsor: jdoe }
                - { id: ledger-bot, kind: autonomous, sponsors: [mkhan, mkhan], grants: [{ scopes: [l:read], resource: erp:l }] }
                - { id: hr-bot, kind: delegated, sponsor: jdoe, sponsors: [jdoe, mkhan] }
                - { id: fine-bot, kind: delegated, sponsors: [jdoe, mkhan] }
            """)
        let errors = error?.errors ?? []
        #expect(errors.count == 3, "\(String(describing: error))")
        guard errors.count == 3 else { return }
        expect(errors[0], keyPath: "agents.declared[0].sponsor", line: 8, ["agent 'support-copilot' names 1 sponsor", "agents.minSponsors requires at least 2"])
        expect(errors[1], keyPath: "agents.declared[1].sponsors", line: 9, ["sponsor 'mkhan' is named twice for agent 'ledger-bot'"])
        expect(errors[2], keyPath: "agents.declared[2].sponsors", line: 10, ["agent 'hr-bot' has both sponsor and sponsors"])
    }

    @Test func minSponsorsOutOfRange() {
        let error = rejection(
            """
            agents:
              minSponsors: 0
              declared: []
            """)
        expectSingleError(error, keyPath: "agents.minSponsors", line: 2, "must be at least 1, found 0")
    }

    @Test func autonomousAgentInPolicy() {
        let error = rejection(
            """
            \(minimalLDAP)
            agents:
              - { id: support-copilot, kind: delegated, sponsor: jdoe }
              - id: ledger-bot
                kind: autonomous
                sponsor: mkhan
                grants: [{ scopes: [ledger:read], resource: "erp:ledger/*" }]
            policies:
              - id: finance
                when: { memberOf: finance }
                grant:
                  - { agent: support-copilot, scopes: [tickets:read], resource: "zendesk:queue/finance" }
                  - { agent: ledger-bot, scopes: [ledger:read], resource: "erp:ledger/*" }
            """)
        expectSingleError(
            error, keyPath: "policies[0].grant[1].agent", line: 16, "agent 'ledger-bot' is autonomous",
            "declare its grants under agents[1].grants")
    }

    @Test func grantsOnADelegatedAgent() {
        let error = rejection(
            """
            \(minimalLDAP)
            agents:
              - id: support-copilot
                kind: delegated
                sponsor: jdoe
                grants:
                  - { scopes: [tickets:read], resource: "zendesk:queue/all" }
            """)
        expectSingleError(
            error, keyPath: "agents[0].grants", line: 10, "grants are only for autonomous agents",
            "receives its grants from policies")
    }

    @Test func badDurations() {
        let error = rejection(
            """
            sources:
              ldap:
                url: ldap://127.0.0.1:3389
                users: { base: "ou=people,dc=example,dc=com" }
                pollInterval: 30 seconds
                timeout: 0s
              hr:
                secretFiles: [hr.secret]
                tolerance: 1.5m
            targets:
              - { id: gateway, type: http, url: "http://127.0.0.1:9400/grants", secretFile: g.secret, maxBackoff: 0s }
            """)
        let errors = error?.errors ?? []
        #expect(errors.count == 4, "\(String(describing: error))")
        guard errors.count == 4 else { return }
        expect(
            errors[0], keyPath: "sources.ldap.pollInterval", line: 5, column: 19,
            ["invalid duration '30 seconds'", "500ms, 30s, 15m, 1h or 7d"])
        expect(errors[1], keyPath: "sources.ldap.timeout", line: 6, ["must be longer than zero"])
        expect(errors[2], keyPath: "sources.hr.tolerance", line: 9, ["invalid duration '1.5m'"])
        expect(errors[3], keyPath: "targets[0].maxBackoff", line: 11, ["must be longer than zero"])
    }

    @Test func unknownEnumValues() {
        let error = rejection(
            """
            lifecycle:
              precedence: [hr, operator, ldap]
            sources:
              ldap:
                url: ldap://127.0.0.1:3389
                users: { base: "ou=people,dc=example,dc=com", scope: subtree }
                changeDetection: push
            """)
        let errors = error?.errors ?? []
        #expect(errors.count == 3, "\(String(describing: error))")
        guard errors.count == 3 else { return }
        expect(
            errors[0], keyPath: "lifecycle.precedence[1]", line: 2,
            ["unknown source 'operator'", "expected one of: hr, scim, ldap"])
        expect(errors[1], keyPath: "sources.ldap.users.scope", line: 6, ["unknown value 'subtree'", "sub, one"])
        expect(
            errors[2], keyPath: "sources.ldap.changeDetection", line: 7,
            ["unknown value 'push'", "expected one of: auto, syncrepl, poll"])
    }

    @Test func storeAndListenerSettings() {
        let error = rejection(
            """
            store: { synchronous: always }
            http:
              requestTimeout: 0s
              maxConnections: 0
              realtimePriority: 100
            """)
        let errors = error?.errors ?? []
        #expect(errors.count == 4, "\(String(describing: error))")
        guard errors.count == 4 else { return }
        expect(errors[0], keyPath: "store.synchronous", line: 1, ["unknown value 'always'", "expected one of: normal, full"])
        expect(errors[1], keyPath: "http.requestTimeout", line: 3, ["must be longer than zero"])
        expect(errors[2], keyPath: "http.maxConnections", line: 4, ["at least 1"])
        expect(errors[3], keyPath: "http.realtimePriority", line: 5, ["at most 99", "found 100"])
    }

    @Test func aRealTimePriorityIsAWholeNumberFrom1To99() {
        for (value, words) in [("0", ["at least 1", "found 0"]), ("high", ["a real-time priority"]), ("2.5", ["a real-time priority"])] {
            let error = rejection("http: { realtimePriority: \(value) }")
            let errors = error?.errors ?? []
            #expect(errors.count == 1, "\(value): \(String(describing: error))")
            guard let first = errors.first else { continue }
            expect(first, keyPath: "http.realtimePriority", line: 1, words)
        }
        #expect(loaded("http: { realtimePriority: 5 }")?.configuration.http.realtimePriority == 5)
        #expect(loaded("http: { realtimePriority: 99 }")?.configuration.http.realtimePriority == 99)
    }

    @Test func duplicateMappingKey() {
        let error = rejection(
            """
            http:
              listen: 127.0.0.1:8080
              maxBodyBytes: 1024
              listen: 127.0.0.1:9090
            """)
        expectSingleError(
            error, keyPath: "http.listen", line: 4, column: 3, "duplicate key 'listen'", "already set at line 2")
    }

    @Test func duplicateKeysInFlowMappingsAndAlongsideOtherErrors() {
        let error = rejection(
            """
            \(minimalLDAP)
            agents:
              - { id: support-copilot, kind: delegated, kind: autonomous, sponsor: jdoe }
            policies:
              - id: support
                when: { attribute: { name: department, name: title, equals: Support } }
                grant: [{ agent: nobody, scopes: [tickets:read], resource: "zendesk:queue/all" }]
            safety:
              maxRevocationsPerRun: 10
              maxRevocationsPerRun: 20
            """)
        let errors = error?.errors ?? []
        // The policy's agent nobody declares is a warning (SPEC §15): it may be registered later.
        #expect(errors.count == 3, "\(String(describing: error))")
        guard errors.count == 3 else { return }
        expect(errors[0], keyPath: "agents[0].kind", line: 6, column: 45, ["duplicate key 'kind'", "line 6"])
        expect(errors[1], keyPath: "policies[0].when.attribute.name", line: 9, column: 44, ["duplicate key 'name'"])
        expect(errors[2], keyPath: "safety.maxRevocationsPerRun", line: 13, column: 3, ["duplicate key", "line 12"])
    }

    @Test func yamlSyntaxErrorHasItsLine() {
        let error = rejection(
            """
            store:
              sqlite: /var/lib/tether/tether.db
            http:
              listen: "127.0.0.1:8080
              maxBodyBytes: 1024
            """)
        #expect(error?.code == .invalidYAML)
        let finding = error?.errors.first
        #expect(error?.errors.count == 1)
        #expect(finding?.line == 4, "\(String(describing: finding))")
        #expect(finding?.message.contains("invalid YAML") == true)

        let indentation = rejection(
            """
            store:
              sqlite: /var/lib/tether/tether.db
             http: { listen: 127.0.0.1:8080 }
            """)
        #expect(indentation?.code == .invalidYAML)
        #expect(indentation?.errors.first?.line == 3, "\(String(describing: indentation))")
        #expect(indentation?.description.hasPrefix("\(testFile):3:") == true)
    }

    @Test func ratioOutOfRange() {
        let error = rejection(
            """
            safety:
              maxRevocationsPerRun: -1
              maxRevocationRatio: 1.5
            """)
        let errors = error?.errors ?? []
        #expect(errors.count == 2, "\(String(describing: error))")
        guard errors.count == 2 else { return }
        expect(errors[0], keyPath: "safety.maxRevocationsPerRun", line: 2, ["must be at least 0, found -1"])
        expect(errors[1], keyPath: "safety.maxRevocationRatio", line: 3, ["outside 0...1", "e.g. 0.2"])
    }

    @Test(arguments: [
        ("0", "must be at least 1, found 0"), ("-500", "must be at least 1, found -500"),
        ("2000000", "must be at most 1000000, found 2000000"), ("1500-*", "a number of values per range request"),
        ("\"500\"", "a number of values per range request"),
    ])
    func badRangeSize(value: String, message: String) {
        let error = rejection(
            """
            sources:
              ldap:
                url: ldap://127.0.0.1:3389
                users: { base: "ou=people,dc=example,dc=com" }
                rangeSize: \(value)
            """)
        let errors = error?.errors ?? []
        #expect(errors.count == 1, "\(String(describing: error))")
        guard errors.count == 1 else { return }
        expect(errors[0], keyPath: "sources.ldap.rangeSize", line: 5, [message])
    }

    @Test(arguments: [
        ("ten minutes", "invalid duration 'ten minutes'"), ("0s", "must be longer than zero"), ("[10m]", "a duration"),
    ])
    func badSafetyWindow(value: String, message: String) {
        let error = rejection(
            """
            safety:
              maxRevocationsPerRun: 100
              window: \(value)
            """)
        expectSingleError(error, keyPath: "safety.window", line: 3, message)
    }

    @Test(arguments: [("0s", "must be longer than zero"), ("ninety days", "invalid duration"), ("{ days: 90 }", "a duration")])
    func badExceptionMaxDuration(value: String, message: String) {
        let error = rejection(
            """
            exceptions:
              maxDuration: \(value)
            """)
        expectSingleError(error, keyPath: "exceptions.maxDuration", line: 2, message)
    }

    @Test func unknownExceptionsKey() {
        let error = rejection(
            """
            exceptions:
              maxDays: 30
            """)
        expectSingleError(error, keyPath: "exceptions.maxDays", line: 2, "maxDuration")
    }

    @Test func unbalancedTemplate() {
        let error = rejection(
            """
            \(minimalLDAP)
            agents:
              - { id: support-copilot, kind: delegated, sponsor: jdoe }
            policies:
              - id: support
                when: { memberOf: support }
                grant:
                  - agent: support-copilot
                    scopes: [tickets:read]
                    resource: "zendesk:queue/{department"
            """)
        expectSingleError(
            error, keyPath: "policies[0].grant[0].resource", line: 13, "'{' at position 15 is never closed",
            "{department}")
    }

    @Test func conditionsNeedExactlyOneOperator() {
        let error = rejection(
            """
            \(minimalLDAP)
            agents:
              - { id: support-copilot, kind: delegated, sponsor: jdoe }
            policies:
              - id: support
                when:
                  all:
                    - memberOf: support
                      attribute: { name: department, equals: Support }
                    - attribute: { name: department, equals: Support, in: [Support] }
                    - attribute: { name: department }
                    - any: []
                grant: [{ agent: support-copilot, scopes: [tickets:read], resource: "zendesk:queue/all" }]
            """)
        let errors = error?.errors ?? []
        #expect(errors.count == 4, "\(String(describing: error))")
        guard errors.count == 4 else { return }
        expect(
            errors[0], keyPath: "policies[0].when.all[0].attribute", line: 12,
            ["exactly one of", "'memberOf' and 'attribute'"])
        expect(errors[1], keyPath: "policies[0].when.all[1].attribute.in", line: 13, ["'equals' and 'in'"])
        expect(
            errors[2], keyPath: "policies[0].when.all[2].attribute", line: 14,
            ["needs one of equals, in, present, prefix, bitsSet"])
        expect(errors[3], keyPath: "policies[0].when.all[3].any", line: 15, ["at least one condition"])
    }

    @Test func severalErrorsAreReportedTogetherInFileOrder() {
        let error = rejection(
            """
            http:
              listen: localhost
            admin:
              mode: rw-rw----
            sources:
              ldap:
                url: http://ldap.example.com
                users: { base: "ou=people,dc=example,dc=com" }
            agents:
              - { id: bot, kind: robot, sponsor: jdoe }
            polices: []
            """)
        guard let error else { return }
        #expect(
            error.errors.map(\.keyPath) == [
                "http.listen", "admin.mode", "sources.ldap.url", "agents[0].kind", "polices",
            ])
        #expect(error.errors.map(\.line) == [2, 4, 7, 10, 11])
        let lines = error.description.split(separator: "\n")
        #expect(lines.count == 5)
        #expect(
            lines.first?.hasPrefix("\(testFile):2:11: error: http.listen: invalid listen address 'localhost'") == true)
        #expect(
            lines.contains {
                $0.contains("agents[0].kind: unknown value 'robot'; expected one of: delegated, autonomous")
            })
        #expect(lines.last?.contains("unknown key 'polices'; did you mean 'policies'?") == true)
    }

    @Test func ldapSettingsThatContradictEachOther() {
        let error = rejection(
            """
            sources:
              ldap:
                url: ldaps://ldap.example.com
                startTLS: true
                bindDN: cn=tether,ou=services,dc=example,dc=com
                users: { base: "ou=people,dc=example,dc=com", filter: "objectClass=person" }
                mapping: { userName: sAMAccountName, nickname: cn }
                attributes: { department: ou }
            """)
        guard let error else { return }
        #expect(
            error.errors.map(\.keyPath) == [
                "sources.ldap.bindPasswordFile", "sources.ldap.startTLS", "sources.ldap.users.filter",
                "sources.ldap.mapping.nickname", "sources.ldap.attributes.department",
            ], "\(error)")
    }

    @Test func unreadableFile() {
        do {
            _ = try ConfigurationLoader.load(path: "/nonexistent/tether.yaml")
            Issue.record("expected an error")
        } catch {
            #expect(error.code == .unreadableFile)
            #expect(
                error.description
                    == "/nonexistent/tether.yaml: error: cannot read the configuration file: no such file; pass --config PATH or set TETHER_CONFIG"
            )
        }
    }
}
