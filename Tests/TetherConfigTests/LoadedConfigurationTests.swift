import Testing
import TetherConfig
import TetherCore

@Suite("defaults, paths and warnings")
struct LoadedConfigurationTests {
    @Test func emptyFileIsEveryDefault() throws {
        let configuration = try #require(loaded("")).configuration
        #expect(configuration == Configuration())
        #expect(configuration.store.sqlite == "/var/lib/tether/tether.db")
        #expect(configuration.http.listen == "127.0.0.1:8080")
        #expect(configuration.http.maxBodyBytes == 1_048_576)
        #expect(configuration.http.maxConnections == 512)
        #expect(configuration.http.realtimePriority == nil, "the event loops stay in the normal class unless asked")
        #expect(configuration.admin.socket == "/run/tether/admin.sock")
        #expect(configuration.admin.mode == 0o660)
        #expect(configuration.check.tokenFile == nil)
        #expect(!configuration.check.isEnabled)
        #expect(configuration.lifecycle.precedence == [.hr, .scim, .ldap])
        #expect(configuration.lifecycle.correlate == [.employeeNumber, .email, .userName])
        #expect(
            configuration.safety
                == SafetyLimits(maxRevocationsPerRun: 500, maxRevocationRatio: 0.2, minGrantsForRatio: 100))
        #expect(configuration.sources.isEmpty)
        #expect(configuration.targets.isEmpty)
        #expect(try #require(loaded("# nothing but a comment\n")).configuration == Configuration())
    }

    @Test func safetyWindowIsADuration() throws {
        #expect(SafetyLimits().window == 600, "the default window is 10m")
        let safety = try #require(loaded("safety: { window: 90s }")).configuration.safety
        #expect(safety == SafetyLimits(window: 90))
        #expect(try #require(loaded("safety: { window: 1h }")).configuration.safety.window == 3_600)
    }

    @Test func exceptionsMaxDurationIsADurationOf90DaysByDefault() throws {
        #expect(ExceptionsConfiguration().maxDuration == .seconds(90 * 86_400))
        let configuration = try #require(loaded("exceptions: { maxDuration: 30d }")).configuration
        #expect(configuration.exceptions.maxDuration == .seconds(30 * 86_400))
    }

    @Test func sourceDefaultsWhenKeysAreOmitted() throws {
        let yaml = """
            \(minimalLDAP)
              scim: { tokenFile: scim.token }
              hr: { secretFiles: [hr.secret] }
            targets:
              - { id: gateway, type: http, url: "http://127.0.0.1:9400/grants/", secretFile: gateway.secret }
            """
        let configuration = try #require(loaded(yaml)).configuration
        let ldap = try #require(configuration.sources.ldap)
        #expect(ldap.startTLS == false)
        #expect(ldap.tlsVerify == true)
        #expect(ldap.caFile == nil && ldap.bindDN == nil && ldap.bindPasswordFile == nil)
        #expect(ldap.users.filter == "(objectClass=inetOrgPerson)")
        #expect(ldap.users.scope == .sub)
        #expect(ldap.groups == nil)
        #expect(ldap.mapping == LDAPMappingConfiguration())
        #expect(ldap.mapping.externalId == "entryUUID" && ldap.mapping.userName == "uid")
        #expect(ldap.attributes.isEmpty)
        #expect(ldap.suspendWhen == nil)
        #expect(ldap.changeDetection == .auto)
        #expect(ldap.pollInterval == .seconds(30))
        #expect(ldap.fullScanInterval == .seconds(15 * 60))
        #expect(ldap.pageSize == 500)
        #expect(ldap.rangeSize == nil, "values are asked for whole unless rangeSize is set")
        #expect(ldap.timeout == .seconds(30))
        #expect(configuration.sources.hr?.tolerance == .seconds(5 * 60))
        let target = try #require(configuration.targets.first)
        #expect(target.orphans == .report)
        #expect(target.timeout == nil)
        #expect(target.maxBackoff == nil)
        #expect(target.url == "http://127.0.0.1:9400/grants")
    }

    @Test func partialMappingKeepsTheOtherDefaults() throws {
        let yaml = """
            \(minimalLDAP)
                mapping: { externalId: objectGUID, userName: sAMAccountName }
                suspendWhen: { attribute: { name: userAccountControl, bitsSet: 0x2 } }
                groups: { base: "ou=groups,dc=example,dc=com", nested: false }
            """
        let ldap = try #require(loaded(yaml)?.configuration.sources.ldap)
        #expect(ldap.mapping.externalId == "objectGUID")
        #expect(ldap.mapping.userName == "sAMAccountName")
        #expect(ldap.mapping.email == "mail")
        #expect(ldap.suspendWhen == LDAPSuspendConfiguration(attribute: "userAccountControl", test: .bitsSet(2)))
        #expect(ldap.groups?.memberAttributes == ["member", "uniqueMember"])
        #expect(ldap.groups?.nested == false)
    }

    @Test func relativePathsAreResolvedAgainstTheConfigurationFolder() throws {
        let yaml = """
            store: { sqlite: ../state/tether.db, synchronous: full }
            admin: { socket: ./run/admin.sock, mode: "0600" }
            check: { tokenFile: check.token }
            sources:
              ldap:
                url: ldaps://ldap.example.com:636
                caFile: /etc/ssl/certs/ca.pem
                bindDN: cn=tether,ou=services,dc=example,dc=com
                bindPasswordFile: secrets/ldap.password
                users: { base: "ou=people,dc=example,dc=com" }
              scim: { tokenFile: /etc/tether/scim.token }
              hr: { secretFiles: [hr.secret, ../old/hr.secret] }
            targets:
              - { id: gateway, type: http, url: "https://gw.example.com/grants", secretFile: gateway.secret }
            """
        let configuration = try #require(loaded(yaml, file: "/srv/tether/conf/tether.yaml")).configuration
        #expect(configuration.store.sqlite == "/srv/tether/state/tether.db")
        #expect(configuration.store.synchronous == .full)
        #expect(configuration.admin.socket == "/srv/tether/conf/run/admin.sock")
        #expect(configuration.admin.mode == 0o600)
        #expect(configuration.check.tokenFile == "/srv/tether/conf/check.token")
        #expect(configuration.sources.ldap?.caFile == "/etc/ssl/certs/ca.pem")
        #expect(configuration.sources.ldap?.bindPasswordFile == "/srv/tether/conf/secrets/ldap.password")
        #expect(configuration.sources.scim?.tokenFile == "/etc/tether/scim.token")
        #expect(configuration.sources.hr?.secretFiles == ["/srv/tether/conf/hr.secret", "/srv/tether/old/hr.secret"])
        #expect(configuration.targets.first?.secretFile == "/srv/tether/conf/gateway.secret")
    }

    @Test("store.synchronous is full unless told otherwise; normal keeps its meaning")
    func storeDurabilityDefaultsToFull() throws {
        #expect(try #require(loaded("store: { sqlite: /var/lib/tether/a.db }")).configuration.store.synchronous == .full)
        #expect(StoreConfiguration().synchronous == .full)
        let normal = try #require(loaded("store: { sqlite: /var/lib/tether/a.db, synchronous: normal }")).configuration
        #expect(normal.store.synchronous == .normal)
    }

    @Test func httpListenAcceptsIPv6() throws {
        let configuration = try #require(loaded("http: { listen: \"[::1]:9090\" }")).configuration
        #expect(configuration.http.host == "::1")
        #expect(configuration.http.port == 9090)
        #expect(configuration.http.listen == "[::1]:9090")
    }

    @Test func unknownGroupsAreWarningsWithTheirLocation() throws {
        let yaml = """
            \(minimalLDAP)
            agents:
              - { id: support-copilot, kind: delegated, sponsor: jdoe }
            policies:
              - id: support
                when:
                  any:
                    - memberOf: Support
                    - memberOf: cn=helpdesk,ou=groups,dc=example,dc=com
                grant: [{ agent: support-copilot, scopes: [tickets:read], resource: "zendesk:queue/{department}" }]
            """
        let result = try #require(loaded(yaml))
        #expect(result.warnings.isEmpty, "\(result.warnings)")
        let warnings = result.unknownGroupWarnings(knownGroups: ["support", "cn=support,ou=groups,dc=example,dc=com"])
        #expect(warnings.count == 1)
        let warning = try #require(warnings.first)
        #expect(warning.severity == .warning)
        expect(
            warning, keyPath: "policies[0].when.any[1].memberOf", line: 12, column: 21,
            ["group 'cn=helpdesk,ou=groups,dc=example,dc=com' is not known", "policy 'support'"])
        #expect(warning.description.hasPrefix("\(testFile):12:21: warning: policies[0].when.any[1].memberOf: "))
        #expect(
            result.unknownGroupWarnings(knownGroups: ["SUPPORT", "CN=Helpdesk,OU=Groups,DC=Example,DC=Com"]).isEmpty)
    }

    @Test func warningsDoNotRejectTheConfiguration() throws {
        let yaml = """
            sources:
              ldap:
                url: ldaps://ldap.example.com
                tlsVerify: false
                users: { base: "ou=people,dc=example,dc=com" }
            agents:
              - { id: support-copilot, kind: delegated, sponsor: jdoe }
              - { id: ledger-bot, kind: autonomous, sponsor: mkhan }
            """
        let result = try #require(loaded(yaml))
        #expect(result.warnings.map(\.keyPath) == ["sources.ldap.tlsVerify", "agents[0].id", "agents[1].id"])
        #expect(result.warnings[0].message.contains("certificate verification is off"))
        #expect(result.warnings[1].message.contains("not granted by any policy"))
        #expect(result.warnings[2].message.contains("declares no grants"))
    }

    @Test func aTargetStillReceivingV1SignaturesIsWarnedAbout() throws {
        let yaml = """
            targets:
              - { id: gateway, type: http, url: "http://127.0.0.1:9400/grants", secretFile: g.secret }
              - { id: legacy, type: http, url: "http://127.0.0.1:9401/grants", secretFile: g.secret, signatureV1: true }
            """
        let result = try #require(loaded(yaml))
        #expect(result.configuration.targets.map(\.signatureV1) == [false, true])
        #expect(result.warnings.map(\.keyPath) == ["targets[1].signatureV1"])
        #expect(result.warnings.first?.message.contains("do not cover the method or path") == true)
    }

    @Test func policySetCarriesAgentsAndPolicies() throws {
        let yaml = """
            \(minimalLDAP)
            agents:
              - { id: support-copilot, kind: delegated, sponsor: jdoe }
            policies:
              - id: support
                description: Support staff
                when: { not: { attribute: { name: employeeType, equals: contractor } } }
                grant: [{ agent: support-copilot, scopes: [tickets:read], resource: "zendesk:queue/{department}" }]
            """
        let configuration = try #require(loaded(yaml)).configuration
        let policy = try #require(configuration.policies.first)
        #expect(policy.when == .not(.attribute(name: "employeeType", test: .equals("contractor"))))
        #expect(policy.description == "Support staff")
        let set = configuration.policySet
        #expect(set.policies == configuration.policies)
        #expect(set.agent("support-copilot")?.kind == .delegated)
        #expect(set.hash == PolicySet(agents: configuration.agents, policies: configuration.policies).hash)
    }
}

@Suite("durations")
struct ConfigurationDurationTests {
    @Test(arguments: [
        ("500ms", Duration.milliseconds(500)), ("30s", .seconds(30)), ("15m", .seconds(900)),
        ("1h", .seconds(3_600)), ("7d", .seconds(7 * 86_400)), ("0s", .zero),
    ])
    func parses(_ text: String, _ expected: Duration) {
        #expect(ConfigurationDuration.parse(text) == expected)
        #expect(ConfigurationDuration.parse(ConfigurationDuration.format(expected)) == expected)
    }

    @Test(arguments: [
        "", "30", "s", "1.5s", "30 s", "-1s", "30S", "1w", "30sec", "1h30m", " 30s", "99999999999999999999d",
    ])
    func rejects(_ text: String) {
        #expect(ConfigurationDuration.parse(text) == nil)
    }

    @Test func formatsTheShortestUnit() {
        #expect(ConfigurationDuration.format(.seconds(900)) == "15m")
        #expect(ConfigurationDuration.format(.seconds(90)) == "90s")
        #expect(ConfigurationDuration.format(.milliseconds(1_500)) == "1500ms")
        #expect(ConfigurationDuration.format(.seconds(86_400)) == "1d")
    }
}
