import Foundation
import Testing
import TetherCore
@testable import TetherStore

/// The readers that spare `JSONDecoder` on a decision's path give what the decoder gives, for
/// every shape the store writes, and step aside (nil) for anything else.
@Suite struct StoredValueReaderTests {
    static let lineages = [
        Lineage(policy: "support-tickets", policySet: "sha256:abc"),
        Lineage(
            policy: "dept-00-docs", policySet: "sha256:e789", identity: "i_b22f",
            facts: ["memberOf dept-00", "not(employeeType equals contractor)", "department=Dept \"00\" \\ é 😀"],
            versions: ["ldap": "2026-01-05T09:00:00.000000Z#000000#000#000000", "hr": "v2"],
            events: ["ldap": "ldap:0000:2026", "scim": "scim_1"]),
        Lineage(policy: "agent:ledger-bot", policySet: "sha256:1", identity: nil, facts: [], versions: [:], events: [:]),
    ]

    static let states = [
        AgentState(agent: "copilot", quarantined: false),
        AgentState(
            agent: "assistant", sponsorOverride: "mkhan", quarantined: true, reason: "sponsor jdoe terminated",
            proposedSponsor: "boss", awaitsOperator: true),
    ]

    @Test(arguments: lineages)
    func aLineageReadsAsTheDecoderReadsIt(_ lineage: Lineage) throws {
        let text = try SQLiteStateStore.encode(lineage)
        #expect(Lineage.read(text) == lineage)
        #expect(try SQLiteStateStore.decode(Lineage.self, text, what: "lineage") == lineage)
    }

    @Test(arguments: states)
    func anAgentStateReadsAsTheDecoderReadsIt(_ state: AgentState) throws {
        let text = try SQLiteStateStore.encode(state)
        #expect(AgentState.read(text) == state)
        // Written by another encoder: nulls instead of absent keys, keys in another order.
        let nulls = #"{"quarantined":true,"reason":null,"agent":"copilot","awaitsOperator":false,"sponsorOverride":null}"#
        #expect(AgentState.read(nulls) == AgentState(agent: "copilot", quarantined: true))
    }

    @Test(arguments: [
        #"{"policy":"p","policySet":"s","facts":[]}"#,  // versions and events missing
        #"{"policy":1,"policySet":"s","facts":[],"versions":{},"events":{}}"#,
        #"{"policy":"p","policySet":"s","facts":[],"versions":{},"events":{}} trailing"#,
        #"{"policy":"p""#,
    ])
    func aLineageItDoesNotExpectIsLeftToTheDecoder(_ text: String) {
        #expect(Lineage.read(text) == nil)
    }

    @Test(arguments: [
        #"{"agent":"a","quarantined":"yes","awaitsOperator":false}"#,
        #"{"agent":"a","awaitsOperator":false}"#,
        #"[]"#,
    ])
    func anAgentStateItDoesNotExpectIsLeftToTheDecoder(_ text: String) {
        #expect(AgentState.read(text) == nil)
    }
}
