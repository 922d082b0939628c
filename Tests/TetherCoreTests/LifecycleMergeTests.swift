import Foundation
import Testing
import TetherCore

/// The lifecycle merge on its own (SPEC §3): what an event does to the identity it
/// correlates with, with no store and no engine.
@Suite struct LifecycleMergeTests {
    let lifecycle = Lifecycle(precedence: [.hr, .scim, .ldap])

    func event(
        _ id: String, _ source: Source, _ kind: EventKind = .mover, status: IdentityStatus? = nil, version: String,
        department: String? = nil, userName: String? = "alice", manager: String? = nil
    ) -> LifecycleEvent {
        LifecycleEvent(
            id: id, source: source, kind: kind, occurredAt: Date(timeIntervalSince1970: 0),
            facts: IdentityFacts(
                externalId: "\(source.rawValue)-alice", userName: userName, department: department, manager: manager,
                status: status, version: version))
    }

    func applied(_ decision: LifecycleDecision) throws -> (Identity, IdentityTransition, DirectoryLag?) {
        guard case .apply(let identity, let transition, let lag) = decision else {
            throw DecisionError(decision: decision)
        }
        return (identity, transition, lag)
    }

    struct DecisionError: Error { var decision: LifecycleDecision }

    @Test func anEventNobodyCorrelatesWithMakesANewIdentityAndALeaverATombstone() throws {
        let (joined, transition, _) = try applied(lifecycle.decide(
            event("e1", .ldap, .joiner, status: .active, version: "1"), existing: nil, newID: "i_new"))
        #expect(joined.id == "i_new" && joined.userName == "alice" && joined.status == .active)
        #expect(transition == .joined && !joined.isTombstone)

        let (tombstone, left, _) = try applied(lifecycle.decide(
            event("e2", .hr, .leaver, version: "1"), existing: nil, newID: "i_gone"))
        #expect(tombstone.status == .terminated && tombstone.isTombstone && tombstone.statusSource == .hr)
        #expect(left == .terminated)
    }

    @Test func anOlderVersionFromTheSameSourceIsStaleButNotFromAnother() throws {
        let (alice, _, _) = try applied(lifecycle.decide(event("e1", .ldap, version: "5"), existing: nil, newID: "i_a"))
        #expect(lifecycle.decide(event("e2", .ldap, version: "4"), existing: alice, newID: "x") == .stale(identity: "i_a", lastVersion: "5"))
        #expect(throws: Never.self) { try applied(lifecycle.decide(event("e3", .hr, version: "1"), existing: alice, newID: "x")) }
    }

    /// A stored version from a clock that ran ahead (above the ceiling) makes no later event stale.
    @Test func aStoredVersionAboveTheCeilingMakesNoLaterEventStale() throws {
        let (alice, _, _) = try applied(lifecycle.decide(event("e1", .ldap, version: "2099"), existing: nil, newID: "i_a"))
        #expect(lifecycle.decide(event("e2", .ldap, version: "2026"), existing: alice, newID: "x", ceiling: "2027") != .stale(identity: "i_a", lastVersion: "2099"))
        #expect(lifecycle.decide(event("e2", .ldap, version: "2026"), existing: alice, newID: "x") == .stale(identity: "i_a", lastVersion: "2099"))
    }

    /// A termination sticks against a weaker source: the directory still listing the person
    /// active is a lag, not a reactivation; the source that terminated may reverse it.
    @Test func terminationSticksAgainstAWeakerSourceAndIsALag() throws {
        let (alice, _, _) = try applied(lifecycle.decide(event("e1", .ldap, status: .active, version: "1"), existing: nil, newID: "i_a"))
        let (left, transition, _) = try applied(lifecycle.decide(event("e2", .hr, .leaver, version: "2"), existing: alice, newID: "x"))
        #expect(left.status == .terminated && left.statusSource == .hr && transition == .terminated)

        let (still, unchanged, lag) = try applied(lifecycle.decide(event("e3", .ldap, status: .active, version: "3"), existing: left, newID: "x"))
        #expect(still.status == .terminated && unchanged == .unchanged)
        #expect(lag == DirectoryLag(identity: "i_a", userName: "alice", source: .ldap, statusSource: .hr, status: .terminated))

        let (back, reactivated, noLag) = try applied(lifecycle.decide(event("e4", .hr, .joiner, status: .active, version: "4"), existing: still, newID: "x"))
        #expect(back.status == .active && back.statusSource == nil && reactivated == .reactivated && noLag == nil)
    }

    @Test func mergedFieldsFollowPrecedenceAndManagersResolveThroughTheSource() throws {
        let (fromLDAP, _, _) = try applied(lifecycle.decide(
            event("e1", .ldap, version: "1", department: "Support", manager: "ldap-boss"), existing: nil, newID: "i_a",
            resolveManager: { source, key in source == .ldap && key == "ldap-boss" ? "i_boss" : nil }))
        #expect(fromLDAP.department == "Support" && fromLDAP.manager == "i_boss")

        let (merged, transition, _) = try applied(lifecycle.decide(
            event("e2", .hr, version: "1", department: "Sales"), existing: fromLDAP, newID: "x",
            resolveManager: { source, key in source == .ldap && key == "ldap-boss" ? "i_boss" : nil }))
        #expect(merged.department == "Sales", "HR outranks LDAP")
        #expect(merged.manager == "i_boss", "the manager LDAP names still resolves")
        #expect(transition == .moved)
    }
}

/// Whether an agent may hold grants, from its sponsor's liveness (SPEC §5), on its own.
@Suite struct SponsorshipRuleTests {
    let copilot = Agent(id: "copilot", kind: .delegated, sponsor: "jdoe")
    let assistant = Agent(id: "assistant", kind: .delegated, sponsor: "jdoe", onSponsorLeave: .transferToManager)

    func person(_ userName: String, _ status: IdentityStatus = .active, manager: IdentityID? = nil) -> Identity {
        Identity(id: "i_\(userName)", userName: userName, manager: manager, status: status)
    }

    @Test func anActiveSponsorKeepsTheAgentFreeAndAMissingOneQuarantinesIt() {
        #expect(!Sponsorship.decide(copilot, previous: nil, sponsor: person("jdoe"), manager: nil).quarantined)
        let unknown = Sponsorship.decide(copilot, previous: nil, sponsor: nil, manager: nil)
        #expect(unknown.quarantined && unknown.reason == "sponsor jdoe is not a known identity")
    }

    @Test func aSponsorWhoLeftQuarantinesTheAgentOrProposesTheirManager() {
        let quarantined = Sponsorship.decide(copilot, previous: nil, sponsor: person("jdoe", .terminated), manager: person("boss"))
        #expect(quarantined.quarantined && quarantined.reason == "sponsor jdoe terminated")
        #expect(quarantined.proposedSponsor == nil && !quarantined.awaitsOperator)

        let proposed = Sponsorship.decide(assistant, previous: nil, sponsor: person("jdoe", .suspended), manager: person("boss"))
        #expect(proposed.quarantined && proposed.proposedSponsor == "boss" && proposed.awaitsOperator)
        // Awaiting an operator, the state holds whatever the sponsor does next.
        #expect(Sponsorship.decide(assistant, previous: proposed, sponsor: person("jdoe"), manager: nil) == proposed)
    }

    @Test func anOperatorsOverrideIsTheSponsorInForce() {
        let state = AgentState(agent: "copilot", sponsorOverride: "mkhan", quarantined: false)
        #expect(Sponsorship.effectiveSponsor(of: copilot, state: state) == "mkhan")
        #expect(Sponsorship.effectiveSponsor(of: copilot, state: nil) == "jdoe")
        let next = Sponsorship.decide(copilot, previous: state, sponsor: person("mkhan", .terminated), manager: nil)
        #expect(next.quarantined && next.sponsorOverride == "mkhan" && next.reason == "sponsor mkhan terminated")
    }
}
