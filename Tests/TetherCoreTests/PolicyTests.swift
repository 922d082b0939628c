import Foundation
import Crypto
import Testing
import TetherCore

@Suite struct ConditionTests {
    let alice = Identity(
        id: "i_1", userName: "alice", email: "alice@example.com", department: "Support", title: "Senior Agent",
        groups: ["support", "cn=support,ou=groups,dc=example,dc=com"],
        attributes: ["userAccountControl": ["514"], "costCenter": ["CC-1", "CC-2"]])

    @Test(arguments: [
        (Condition.memberOf("support"), true),
        (.memberOf("CN=Support,OU=Groups,DC=example,DC=com"), true),
        (.memberOf("finance"), false),
        (.attribute(name: "department", test: .equals("Support")), true),
        (.attribute(name: "department", test: .equals("support")), false),
        (.attribute(name: "department", test: .in(["Sales", "Support"])), true),
        (.attribute(name: "title", test: .prefix("Senior")), true),
        (.attribute(name: "title", test: .prefix("Junior")), false),
        (.attribute(name: "email", test: .present(true)), true),
        (.attribute(name: "manager", test: .present(true)), false),
        (.attribute(name: "manager", test: .present(false)), true),
        (.attribute(name: "userAccountControl", test: .bitsSet(2)), true),
        (.attribute(name: "userAccountControl", test: .bitsSet(16)), false),
        (.attribute(name: "costCenter", test: .equals("CC-2")), true),
        (.not(.memberOf("finance")), true),
        (.any([.memberOf("finance"), .memberOf("support")]), true),
        (.all([.memberOf("finance"), .memberOf("support")]), false),
        (.all([]), true),
        (.any([]), false),
    ])
    func evaluates(_ condition: Condition, _ expected: Bool) {
        #expect(condition.holds(for: alice) == expected, "\(condition.summary)")
    }

    @Test(
        "group names compare as LDAP compares them: case-insensitively, Unicode included",
        arguments: [
            ("Support", true), ("SUPPORT", true), ("supporT", true), ("support ", false), ("suppor", false),
            ("supporu", false), ("support-1", false), ("CN=Support, OU=Groups", false),
            ("CN=SUPPORT,OU=GROUPS,DC=EXAMPLE,DC=COM", true), ("Équipe", true), ("ÉQUIPE", true), ("equipe", false),
            ("\u{212A}ELVIN", true), ("Straße", false), ("STRASSE", true), ("", false),
        ])
    func membershipIgnoresCase(_ group: String, _ expected: Bool) {
        let identity = Identity(
            id: "i_2", userName: "bob",
            groups: ["support", "cn=support,ou=groups,dc=example,dc=com", "équipe", "kelvin", "strasse"])
        #expect(identity.isMember(of: group) == expected)
    }

    @Test func collectsTheFactsThatMadeItHold() {
        var facts: [String] = []
        let condition = Condition.all([.memberOf("support"), .attribute(name: "department", test: .in(["Support"]))])
        #expect(condition.evaluate(alice, facts: &facts))
        #expect(facts == ["memberOf support", "department=Support"])
    }
}

@Suite struct TemplateTests {
    @Test func expandsFieldsAndMultiValuedAttributes() {
        let identity = Identity(id: "i_1", userName: "alice", department: "Support", attributes: ["costCenter": ["CC-1", "CC-2"]])
        let expanded = ResourceTemplate.expand("erp:{department}/{costCenter}", for: identity)
        #expect(expanded.map(\.resource) == ["erp:Support/CC-1", "erp:Support/CC-2"])
        #expect(expanded.first?.facts == ["department=Support", "costCenter=CC-1"])
    }

    @Test func anUnclosedBraceIsLiteralText() {
        let identity = Identity(id: "i_1", userName: "alice", department: "Support")
        #expect(ResourceTemplate.expand("a/{department}/b{oops", for: identity).map(\.resource) == ["a/Support/b{oops"])
        #expect(ResourceTemplate.expand("{userName}{department}", for: identity).map(\.resource) == ["aliceSupport"])
        #expect(ResourceTemplate.fields(in: "{x}/{y") == ["x"])
    }

    @Test func aMissingFieldYieldsNoResource() {
        let identity = Identity(id: "i_1", userName: "alice")
        #expect(ResourceTemplate.expand("zendesk:queue/{department}", for: identity).isEmpty)
        #expect(ResourceTemplate.expand("static", for: identity).map(\.resource) == ["static"])
        #expect(ResourceTemplate.fields(in: "a/{x}/{y}") == ["x", "y"])
    }
}

@Suite struct GrantTests {
    @Test func idIsTheSpecifiedDigest() {
        let grant = Grant(subject: "alice", agent: "support-copilot", scope: "tickets:read", resource: "zendesk:queue/Support")
        // printf 'alice\nsupport-copilot\ntickets:read\nzendesk:queue/Support' | sha256sum | cut -c1-32
        #expect(grant.id == "g_17d48578781dd5651cb4b0f84657474e")
    }

    @Test(arguments: [
        ("erp:ledger/*", "erp:ledger/2026", true),
        ("erp:ledger/*", "erp:ledger/", true),
        ("erp:ledger/*", "erp:payroll/1", false),
        ("zendesk:queue/Support", "zendesk:queue/Support", true),
        ("zendesk:queue/Support", "zendesk:queue/Support2", false),
    ])
    func coversResources(_ granted: String, _ requested: String, _ expected: Bool) {
        let grant = Grant(subject: "s", agent: "a", scope: "x", resource: granted)
        #expect(grant.covers(resource: requested) == expected)
    }
}

@Suite struct PlanTests {
    static let grant = JustifiedGrant(
        grant: Grant(subject: "alice", agent: "a", scope: "s", resource: "r"), lineage: Lineage(policy: "p", policySet: "sha256:x"))

    @Test func idDependsOnContentNotOnReasons() {
        let a = Plan(scope: .full, steps: [.revoke(Self.grant, reason: "one")])
        let b = Plan(scope: .full, steps: [.revoke(Self.grant, reason: "another")])
        let c = Plan(scope: .full, steps: [.grant(Self.grant, reason: "one")])
        let d = Plan(scope: .identity("i_1"), steps: [.revoke(Self.grant, reason: "one")])
        #expect(a.id == b.id)
        #expect(a.id != c.id)
        #expect(a.id != d.id)
        #expect(a.id.hasPrefix("p_") && a.id.count == 34)
    }

    @Test func reconcilerOrdersQuarantinesRevocationsReleasesThenGrants() {
        let keep = JustifiedGrant(grant: Grant(subject: "bob", agent: "a", scope: "s", resource: "r"), lineage: Self.grant.lineage)
        let add = JustifiedGrant(grant: Grant(subject: "carol", agent: "b", scope: "s", resource: "r"), lineage: Self.grant.lineage)
        let plan = Reconciler.plan(
            scope: .full,
            desired: [keep.grant.id: keep, add.grant.id: add],
            actual: [keep.grant.id: keep, Self.grant.grant.id: Self.grant],
            agents: [
                AgentTransition(agent: "b", sponsor: "x", next: AgentState(agent: "b", quarantined: false)),
                AgentTransition(agent: "a", sponsor: "y", next: AgentState(agent: "a", quarantined: true, reason: "sponsor y terminated")),
            ],
            revocationReason: { _ in "gone" })
        #expect(plan.transcript == [
            "quarantine a sponsor=y (sponsor y terminated)",
            "revoke alice a s r (gone)",
            "release b sponsor=x (sponsor x active)",
            "grant carol b s r [p]",
        ])
    }

    @Test func safetyNamesTheRuleThatHeldThePlan() {
        let limits = SafetyLimits(maxRevocationsPerRun: 1, maxRevocationRatio: 0.2, minGrantsForRatio: 100)
        let two = Plan(scope: .full, steps: [
            .revoke(Self.grant, reason: ""),
            .revoke(JustifiedGrant(grant: Grant(subject: "b", agent: "a", scope: "s", resource: "r"), lineage: Self.grant.lineage), reason: ""),
        ])
        #expect(limits.holdReason(for: two, existingGrants: 1_000, origin: .other)?.contains("maxRevocationsPerRun") == true)
        #expect(limits.holdReason(for: two, existingGrants: 1_000, origin: .explicitLeaver) == nil)
        let one = Plan(scope: .full, steps: [.revoke(Self.grant, reason: "")])
        #expect(limits.holdReason(for: one, existingGrants: 4, origin: .other) == nil)
        #expect(limits.holdReason(for: one, existingGrants: 100, origin: .other) == nil)
        let ratio = SafetyLimits(maxRevocationsPerRun: 10, maxRevocationRatio: 0.01, minGrantsForRatio: 100)
        #expect(ratio.holdReason(for: two, existingGrants: 100, origin: .other)?.contains("maxRevocationRatio") == true)
        #expect(limits.holdReason(for: one, existingGrants: 1_000, origin: .sourceScan(users: 0)) == "source scan returned zero users")
        #expect(limits.holdReason(for: Plan(scope: .full, steps: []), existingGrants: 0, origin: .sourceScan(users: 0)) == nil)
    }
}

@Suite struct GrantKeyTests {
    @Test(arguments: [
        Grant(subject: "alice", agent: "support-copilot", scope: "tickets:read", resource: "zendesk:queue/Support"),
        Grant(subject: "agent:ledger-bot", agent: "ledger-bot", scope: "ledger:read", resource: "erp:ledger/*"),
        Grant(subject: "zoë", agent: "a", scope: "", resource: "ü\n"),
    ])
    func theIdIsTheFirstHalfOfTheSHA256OfTheFourFields(_ grant: Grant) {
        let digest = SHA256.hash(data: Data("\(grant.subject)\n\(grant.agent)\n\(grant.scope)\n\(grant.resource)".utf8))
        let hex = digest.map { String(format: "%02x", $0) }.joined()
        #expect(grant.id == "g_" + hex.prefix(32))
        #expect(GrantKey(id: grant.id) == grant.key)
        #expect(grant.key.id == grant.id)
    }

    @Test(arguments: ["", "g_", "x_0123456789abcdef0123456789abcdef", "g_0123456789ABCDEF0123456789abcdef", "g_0123456789abcdef0123456789abcde"])
    func malformedIdsHaveNoKey(_ id: String) {
        #expect(GrantKey(id: id) == nil)
    }

    @Test func membershipIgnoresCaseLikeLowercasing() {
        let identity = Identity(id: "i", userName: "u", groups: ["cn=Straße,ou=Groups", "Support"])
        #expect(identity.isMember(of: "SUPPORT"))
        #expect(identity.isMember(of: "cn=straße,ou=groups"))
        #expect(!identity.isMember(of: "Suppor"))
        #expect(!identity.isMember(of: "Support@"))
    }
}

@Suite struct DesiredDiffTests {
    @Test func theDiffAgreesWithTheWholeDesiredState() {
        let policySet = PolicySet(
            agents: [
                Agent(id: "copilot", kind: .delegated, sponsor: "boss"),
                Agent(id: "bot", kind: .autonomous, sponsor: "boss", grants: [StaticGrant(scopes: ["r"], resource: "x/*")]),
            ],
            policies: [
                Policy(id: "p1", when: .memberOf("support"), grant: [GrantTemplate(agent: "copilot", scopes: ["a", "b"], resource: "q/{department}")]),
                Policy(id: "p2", when: .attribute(name: "department", test: .present(true)), grant: [GrantTemplate(agent: "copilot", scopes: ["a"], resource: "q/{department}")]),
            ])
        let people = [
            Identity(id: "i_1", userName: "alice", department: "Support", groups: ["support"]),
            Identity(id: "i_2", userName: "bob", department: "Sales"),
            Identity(id: "i_3", userName: "carol", department: "Support", status: .terminated, groups: ["support"]),
        ]
        let active: Set<String> = ["copilot", "bot"]
        let desired = DesiredState(policySet: policySet)
        let whole = desired.compute(identities: people, activeAgents: active)
        let stale = Grant(subject: "carol", agent: "copilot", scope: "a", resource: "q/Support")
        let kept = whole.values.first { $0.grant.subject == "bob" }!.grant
        var diff = DesiredDiff(actual: [stale.key, kept.key])
        desired.addAutonomousGrants(activeAgents: active, to: &diff)
        for identity in people { desired.addGrants(of: identity, activeAgents: active, to: &diff) }
        #expect(diff.unwanted == [stale.key])
        #expect(diff.missingByID == whole.filter { $0.value.grant != kept })

        // Slices of the identities folded apart and merged in order give the same diff.
        var first = DesiredDiff(actual: diff.actual)
        desired.addAutonomousGrants(activeAgents: active, to: &first)
        desired.addGrants(of: people[0], activeAgents: active, to: &first)
        var second = DesiredDiff(actual: diff.actual)
        for identity in people.dropFirst() { desired.addGrants(of: identity, activeAgents: active, to: &second) }
        first.merge(second)
        #expect(first.missingByID == diff.missingByID)
        #expect(first.unwanted == diff.unwanted)
    }
}

@Suite struct TimestampTests {
    @Test(arguments: [0.0, 1_800_000_000.123, 951_782_400.999, 4_102_444_799.5, 1_709_164_800.007])
    func timestampsAreFixedWidthRFC3339(_ seconds: Double) {
        let date = Date(timeIntervalSince1970: seconds)
        let millis = Int64((seconds * 1000).rounded(.down))
        let whole = Date(timeIntervalSince1970: Double(millis / 1000))
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd'T'HH:mm:ss"
        #expect(Timestamp.string(date) == formatter.string(from: whole) + String(format: ".%03dZ", Int(millis % 1000)))
    }
}
