import Foundation
import PropertyBased
import Testing
import TetherCore
import TetherEngine
import TetherStore

/// Properties over random directories, policies and event streams: those of the decisions
/// taken over memory (``DecisionWorld``), and the audit chain's through the engine and SQLite.
///
/// Each trial draws a seed from the property library (so a failure prints a reproducible
/// seed) and builds its world from a deterministic generator.
@Suite struct PropertyTests {
    /// Decided by the pure decision step over memory: after every event, a full reconciliation
    /// finds nothing left to do.
    @Test func identityScopedPlansKeepTheStoreAtTheDesiredState() async throws {
        await propertyCheck(count: 30, input: Gen.int(in: 0...1_000_000)) { seed in
            var random = SplitMix64(seed: UInt64(seed))
            let scenario = Scenario(&random)
            let world = DecisionWorld(policySet: scenario.policySet)
            for (step, event) in scenario.events.enumerated() {
                _ = try! world.submit(event)
                let replan = try! world.reconcile(origin: .other, actor: .policy, dryRun: true)
                #expect(replan.plan.isEmpty, "seed \(seed), after event \(step) \(event.id): \(replan.plan.transcript)")
                if !replan.plan.isEmpty { return }
            }
        }
    }

    /// Decided over memory.
    @Test func applyingAFullPlanThenReplanningGivesAnEmptyPlan() async throws {
        await propertyCheck(count: 30, input: Gen.int(in: 0...1_000_000)) { seed in
            var random = SplitMix64(seed: UInt64(seed))
            let scenario = Scenario(&random)
            let world = DecisionWorld(policySet: scenario.policySet)
            for event in scenario.events { _ = try! world.submit(event) }
            // A policy change: reconcile everything under a second random policy set.
            let next = Scenario(&random).policySet
            _ = try! world.reload(EngineConfiguration(policySet: next), actor: .policy)
            let replan = try! world.reconcile(origin: .other, actor: .policy, dryRun: true)
            #expect(replan.plan.isEmpty, "seed \(seed): \(replan.plan.transcript)")
        }
    }

    /// Decided over memory.
    @Test func noGrantEverHasAnInactiveSubjectOrAQuarantinedAgent() async throws {
        await propertyCheck(count: 30, input: Gen.int(in: 0...1_000_000)) { seed in
            var random = SplitMix64(seed: UInt64(seed))
            let scenario = Scenario(&random)
            let world = DecisionWorld(policySet: scenario.policySet)
            for event in scenario.events {
                _ = try! world.submit(event)
                let states = world.reads.states
                for stored in world.reads.grants {
                    #expect(states[stored.grant.agent]?.quarantined == false, "seed \(seed): \(stored.grant)")
                    if !stored.grant.subject.hasPrefix("agent:") {
                        let identity = try! world.identity(stored.grant.subject)
                        #expect(identity?.status == .active, "seed \(seed): \(stored.grant) held by \(String(describing: identity?.status))")
                    }
                }
            }
        }
    }

    /// Through the engine and SQLite: the chain is the store's.
    @Test func theAuditChainOfAnyHistoryVerifiesAndAnyFlippedByteBreaksIt() async throws {
        await propertyCheck(count: 30, input: Gen.int(in: 0...1_000_000)) { seed in
            var random = SplitMix64(seed: UInt64(seed))
            let scenario = Scenario(&random)
            let world = try! World(policySet: scenario.policySet)
            for event in scenario.events { _ = try! await world.engine.submit(event) }
            let lines = try! await world.store.auditRecords(AuditQuery()).map(\.line)
            #expect(try! await world.store.verifyAuditChain() == .intact(records: lines.count))
            #expect(AuditChain.verify(lines: lines) == .intact(records: lines.count))
            guard !lines.isEmpty else { return }
            let index = Int(random.next() % UInt64(lines.count))
            var bytes = Array(lines[index].utf8)
            let position = Int(random.next() % UInt64(bytes.count))
            bytes[position] ^= UInt8(1 << (random.next() % 7))
            var tampered = lines
            tampered[index] = String(decoding: bytes, as: UTF8.self)
            #expect(AuditChain.verify(lines: tampered) != .intact(records: lines.count), "seed \(seed): flip at \(index):\(position)")
        }
    }
}

/// A deterministic generator, so a seed reproduces a whole scenario.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A random small company: people, groups, agents, policies and a stream of events.
struct Scenario {
    static let people = (0..<8).map { "u\($0)" }
    static let groups = ["g0", "g1", "g2"]
    static let departments = ["Sales", "Support", "Eng"]

    var policySet: PolicySet
    var events: [LifecycleEvent] = []

    init(_ random: inout SplitMix64) {
        let agents = [
            Agent(id: "a0", kind: .delegated, sponsor: "u0"),
            Agent(id: "a1", kind: .delegated, sponsor: "u1", onSponsorLeave: .transferToManager),
            Agent(id: "a2", kind: .autonomous, sponsor: "u2", grants: [StaticGrant(scopes: ["x:read"], resource: "sys:*")]),
        ]
        let policyCount = Int.random(in: 1...4, using: &random)
        let policies = (0..<policyCount).map { index in
            Policy(
                id: "p\(index)", when: Self.condition(&random, depth: 2),
                grant: [GrantTemplate(
                    agent: ["a0", "a1"].randomElement(using: &random)!,
                    scopes: Array(["read", "write", "admin"].shuffled(using: &random).prefix(Int.random(in: 1...2, using: &random))),
                    resource: Bool.random(using: &random) ? "res/{department}" : "res/static")])
        }
        policySet = PolicySet(agents: agents, policies: policies)

        var versions: [String: Int] = [:]
        var second = 0
        for index in 0..<Int.random(in: 5...25, using: &random) {
            let user = Self.people.randomElement(using: &random)!
            second += 1
            if Int.random(in: 0..<5, using: &random) == 0 {
                let kind: EventKind = Bool.random(using: &random) ? .leaver : .joiner
                events.append(Events.hr("hr-\(index)", kind, employeeNumber: user.dropFirst().description, userName: user, at: second))
            } else {
                versions[user, default: 0] += 1
                let status: IdentityStatus = [.active, .active, .active, .suspended, .terminated].randomElement(using: &random)!
                let facts = Events.ldap(
                    user, version: versions[user]!,
                    groups: Set(Self.groups.filter { _ in Bool.random(using: &random) }),
                    department: Self.departments.randomElement(using: &random),
                    status: status, employeeNumber: user.dropFirst().description,
                    manager: user == "u1" ? "uuid-u3" : nil)
                events.append(Events.ldapEvent(facts))
            }
        }
    }

    static func condition(_ random: inout SplitMix64, depth: Int) -> Condition {
        let leaf = depth == 0 || Int.random(in: 0..<3, using: &random) > 0
        if leaf {
            if Bool.random(using: &random) { return .memberOf(groups.randomElement(using: &random)!) }
            return .attribute(name: "department", test: .in(Array(departments.shuffled(using: &random).prefix(2))))
        }
        let children = (0..<Int.random(in: 1...2, using: &random)).map { _ in condition(&random, depth: depth - 1) }
        switch Int.random(in: 0..<3, using: &random) {
        case 0: return .all(children)
        case 1: return .any(children)
        default: return .not(children[0])
        }
    }
}
