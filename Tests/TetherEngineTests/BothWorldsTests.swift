import Foundation
import PropertyBased
import Testing
import TetherCore
import TetherEngine
import TetherStore

/// The same work through the engine over SQLite (``World``) and through the decision step over
/// memory (``DecisionWorld``): the same outcomes, plan transcripts, audit records, plans and
/// grants. What makes the tests decided over memory stand for the engine's behaviour.
@Suite struct BothWorldsTests {
    @Test func randomStreamsDecideAlikeInBothWorlds() async throws {
        await propertyCheck(count: 20, input: Gen.int(in: 0...1_000_000)) { seed in
            var random = SplitMix64(seed: UInt64(seed))
            let scenario = Scenario(&random)
            // Tight limits, so that identity plans and window plans are held, approved or rejected.
            let safety = SafetyLimits(
                maxRevocationsPerRun: Int.random(in: 1...6, using: &random), maxRevocationRatio: 1, minGrantsForRatio: 1_000_000,
                window: 600)
            var steps: [Step] = []
            var listed: [String: IdentityFacts] = [:]
            for event in scenario.events {
                steps.append(.event(event))
                if event.source == .ldap, let user = event.facts.userName { listed[user] = event.facts }
                if Int.random(in: 0..<4, using: &random) == 0 { steps.append(.advance(Double(Int.random(in: 1...400, using: &random)))) }
                if Int.random(in: 0..<8, using: &random) == 0 { steps.append(Bool.random(using: &random) ? .approveHeld : .rejectHeld) }
                if Int.random(in: 0..<10, using: &random) == 0 { steps.append(.reconcile) }
                if Int.random(in: 0..<10, using: &random) == 0 {
                    // A complete read that may leave some of the people it knew out.
                    steps.append(.snapshot(listed.keys.sorted().filter { _ in Int.random(in: 0..<4, using: &random) > 0 }.map { listed[$0]! }))
                }
            }
            steps += [
                .approveHeld, .reload(EngineConfiguration(policySet: Scenario(&random).policySet, safety: safety)), .approveHeld,
            ]
            try await Self.expectAlike(steps, policySet: scenario.policySet, safety: safety, seed: "seed \(seed)")
        }
    }

    /// The fixtures' stories: sponsors leaving and coming back, an HR leaver, a leaver scheduled
    /// for later, a directory mass deletion held in its window plan and approved, rejections,
    /// policy changes and complete reads.
    @Test func theFixtureStoriesDecideAlikeInBothWorlds() async throws {
        let safety = SafetyLimits(maxRevocationsPerRun: 5, maxRevocationRatio: 1, minGrantsForRatio: 1_000_000, window: 600)
        let staff = (0..<6).map { index in
            Step.event(Events.ldapEvent(Events.ldap(
                "user\(index)", version: 2, groups: ["support"], department: "Support", employeeNumber: "\(5000 + index)")))
        }
        let hana = Events.ldap("hana", version: 2, department: "People", title: "HR Generalist")
        var steps: [Step] = [.seedSponsors] + staff + [.event(Events.ldapEvent(hana))]
        steps += [
            .event(Events.ldapEvent(Events.ldap("jdoe", version: 2, department: "Support", status: .terminated))),
            .event(Events.ldapEvent(Events.ldap("jdoe", version: 3, department: "Support"))),
            .event(Events.ldapEvent(Events.ldap(
                "mkhan", version: 2, department: "People", title: "HR Partner", status: .terminated, manager: "uuid-boss"))),
            .event(Events.hr("evt-leave", .leaver, employeeNumber: "5005", at: 10)),
            .event(Events.hr("evt-later", .leaver, employeeNumber: "5004", at: 11, effectiveAt: World.start.addingTimeInterval(3_600))),
            .dueLeavers,
        ]
        steps += (0..<4).map { Step.deletion("uuid-user\($0)") }
        steps += [
            .rejectHeld, .deletion("uuid-hana"), .deletion("uuid-user1"), .advance(3_600), .dueLeavers, .approveHeld,
            .event(Events.hr("evt-leave", .leaver, employeeNumber: "5005", at: 10)),
            // A policy change held, reconciled again, superseded by the policy's return; a read
            // of nobody held and then rejected.
            .reload(EngineConfiguration(policySet: SafetyTests.withoutSupport, safety: safety)), .reconcile,
            .reload(EngineConfiguration(policySet: Fixtures.policySet, safety: safety)), .snapshot([]), .rejectHeld,
        ]
        let decided = try await Self.expectAlike(steps, policySet: Fixtures.policySet, safety: safety, seed: "fixtures")
        // The story went where it was meant to: every kind of decision was taken in both worlds.
        let actions = Set(decided.audit.map { String($0.prefix { $0 != " " }) })
        for action in [
            "agent.quarantined", "agent.sponsored", "identity.terminated", "plan.held", "plan.rejected", "plan.approved",
            "config.reloaded",
        ] {
            #expect(actions.contains(action), "\(action) missing from \(actions.sorted())")
        }
        #expect(decided.audit.contains { $0.hasPrefix("identity.terminated scheduler ") })
        #expect(decided.plans.contains { $0.hasSuffix(" approved operator:root") })
    }

    /// One piece of work, as both worlds take it.
    enum Step {
        case seedSponsors
        case event(LifecycleEvent)
        /// An LDAP entry deleted, by entryUUID.
        case deletion(String)
        case dueLeavers
        /// Every held plan approved, oldest first.
        case approveHeld
        /// Every held plan rejected, oldest first.
        case rejectHeld
        case advance(TimeInterval)
        /// A full reconciliation on a timer.
        case reconcile
        case reload(EngineConfiguration)
        /// A complete LDAP read listing these users.
        case snapshot([IdentityFacts])
    }

    /// What a step gave.
    enum Outcome: Equatable {
        case events([EventOutcome])
        case approvals([ApprovalOutcome])
        case reconciled(ReconcileOutcome)
        case refused(String)
        case none
    }

    /// What a world holds at the end, as lines.
    struct Holdings: Equatable {
        var audit: [String]
        var grants: [String]
        var plans: [String]
        var identities: [String]
        var agents: [String]
    }

    /// Runs `steps` in both worlds, expecting the same outcome of each and the same holdings at
    /// the end; returns what the memory holds.
    @discardableResult
    static func expectAlike(_ steps: [Step], policySet: PolicySet, safety: SafetyLimits, seed: String) async throws -> Holdings {
        let engine = try World(policySet: policySet, safety: safety)
        let memory = DecisionWorld(policySet: policySet, safety: safety)
        for (index, step) in steps.enumerated() {
            let (stored, decided) = (try await engine.perform(step), memory.perform(step))
            #expect(stored == decided, "\(seed), step \(index) \(step)")
            guard stored == decided else { return try memory.holdings() }
        }
        let (stored, decided) = (try await engine.holdings(), try memory.holdings())
        for (name, a, b) in [
            ("audit", stored.audit, decided.audit), ("grants", stored.grants, decided.grants), ("plans", stored.plans, decided.plans),
            ("identities", stored.identities, decided.identities), ("agents", stored.agents, decided.agents),
        ] {
            let first = zip(a, b).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(a.count, b.count)
            #expect(a == b, "\(seed): \(name) differ from line \(first): \(a.dropFirst(first).prefix(2)) / \(b.dropFirst(first).prefix(2))")
        }
        #expect(!decided.audit.isEmpty)
        return decided
    }

    /// An audit record as a line: its action, its actor and its fields, but for the time.
    static func line(action: String, actor: String, fields: [String: String]) -> String {
        ([action, actor] + fields.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }).joined(separator: " ")
    }
}

extension World {
    /// When every world's clock starts.
    static let start = Date(timeIntervalSince1970: 1_795_867_200)

    func perform(_ step: BothWorldsTests.Step) async throws -> BothWorldsTests.Outcome {
        do {
            switch step {
            case .seedSponsors: try await seedSponsors()
            case .event(let event): return .events([try await engine.submit(event)])
            case .deletion(let key): return .events([try await engine.applyDirectoryDeletion(externalId: key, source: .ldap, mode: "syncrepl")])
            case .dueLeavers: return .events(try await engine.applyDueLeavers())
            case .approveHeld:
                return .approvals(try await store.plans(status: .held).asyncMap { try await engine.approve(planID: $0.plan.id, actor: .operator("root")) })
            case .rejectHeld:
                return .approvals(try await store.plans(status: .held).asyncMap { try await engine.reject(planID: $0.plan.id, actor: .operator("root")) })
            case .advance(let seconds): clock.advance(by: seconds)
            case .reconcile: return .reconciled(try await engine.reconcile(origin: .other, actor: .scheduler))
            case .reload(let next): return .reconciled(try await engine.reload(next, actor: .operator("root")))
            case .snapshot(let users): return .reconciled(try await engine.applySnapshot(DirectorySnapshot(source: .ldap, users: users, mode: "poll")))
            }
            return .none
        } catch let error as EngineError {
            return .refused(error.description)
        }
    }

    func holdings() async throws -> BothWorldsTests.Holdings {
        let audit = try await store.auditRecords(AuditQuery()).map { record in
            BothWorldsTests.line(
                action: record.action, actor: record["actor"] ?? "",
                fields: record.values.filter { !["seq", "prev", "time", "action", "actor"].contains($0.key) }.compactMapValues(\.string))
        }
        return BothWorldsTests.Holdings(
            audit: audit, grants: try await grantLines(),
            plans: try await store.plans(status: nil).map { "\($0.plan.id) \($0.status) \($0.resolvedBy ?? "-")" }.sorted(),
            identities: try await store.identities(status: nil).map { "\($0.id) \($0.userName) \($0.status)" },
            agents: try await store.agentStates().values.map { "\($0)" }.sorted())
    }
}

extension DecisionWorld {
    func perform(_ step: BothWorldsTests.Step) -> BothWorldsTests.Outcome {
        do {
            switch step {
            case .seedSponsors: try seedSponsors()
            case .event(let event): return .events([try submit(event)])
            case .deletion(let key): return .events([try applyDirectoryDeletion(externalId: key, source: .ldap, mode: "syncrepl")])
            case .dueLeavers: return .events(try applyDueLeavers())
            case .approveHeld:
                return .approvals(try heldPlans().map { try approve(planID: $0.plan.id, actor: .operator("root")) })
            case .rejectHeld:
                return .approvals(try heldPlans().map { try reject(planID: $0.plan.id, actor: .operator("root")) })
            case .advance(let seconds): advance(by: seconds)
            case .reconcile: return .reconciled(try reconcile(origin: .other, actor: .scheduler))
            case .reload(let next): return .reconciled(try reload(next, actor: .operator("root")))
            case .snapshot(let users): return .reconciled(try applySnapshot(DirectorySnapshot(source: .ldap, users: users, mode: "poll")))
            }
            return .none
        } catch let error as EngineError {
            return .refused(error.description)
        } catch {
            return .refused("\(error)")
        }
    }

    /// The held plans, oldest first, as the store lists them.
    func heldPlans() throws -> [RecordedPlan] {
        reads.plans.filter { $0.status == .held }.sorted { ($0.createdAt, $0.plan.id) < ($1.createdAt, $1.plan.id) }
    }

    func holdings() throws -> BothWorldsTests.Holdings {
        BothWorldsTests.Holdings(
            audit: memory.audit.map { BothWorldsTests.line(action: $0.action.rawValue, actor: $0.actor.description, fields: $0.fields) },
            grants: grantLines(),
            plans: reads.plans.map { "\($0.plan.id) \($0.status) \($0.resolvedBy ?? "-")" }.sorted(),
            identities: try reads.identities(status: nil).map { "\($0.id) \($0.userName) \($0.status)" },
            agents: reads.states.values.map { "\($0)" }.sorted())
    }
}
