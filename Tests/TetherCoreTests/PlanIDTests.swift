import Foundation
import Testing
import TetherCore

@Suite struct PlanIDTests {
    /// The id is fed to SHA-256 line by line; it must stay the hash of the joined lines.
    @Test func thePlanIDIsTheHashOfTheScopeAndEachStepsLine() {
        let grant = JustifiedGrant(
            grant: Grant(subject: "alice", agent: "copilot", scope: "docs:read", resource: "wiki:Support"),
            lineage: Lineage(policy: "support", policySet: "sha256:abc"))
        let other = JustifiedGrant(
            grant: Grant(subject: "bob", agent: "copilot", scope: "docs:read", resource: "wiki:Support"),
            lineage: Lineage(policy: "support", policySet: "sha256:abc"))
        let steps: [PlanStep] = [
            .quarantine(agent: "copilot", sponsor: "carol", reason: "sponsor left", proposedSponsor: nil),
            .revoke(other, reason: "identity terminated"), .grant(grant, reason: "policy support"),
        ]
        let plan = Plan(scope: .identity("i_alice"), steps: steps)
        let lines = ["identity:i_alice", "quarantine copilot carol", "revoke \(other.grant.id)", "grant \(grant.grant.id)"]
        #expect(plan.id == "p_" + sha256Hex(lines.joined(separator: "\n")).prefix(32))
        #expect(Plan(scope: .full, steps: []).id == "p_" + sha256Hex("full").prefix(32))
    }
}
