import Foundation
import TetherCore
import TetherEngine
import TetherStore

/// The documented `--json` shapes of the operator commands (SPEC §10). The admin socket
/// answers in these shapes and the CLI prints them unchanged with `--json`.
public enum AdminModels {
    public struct GrantRow: Codable, Sendable, Equatable {
        public var id, subject, agent, scope, resource, policy, grantedAt: String
        /// When a check last allowed it (SPEC §15 "Usage"); absent while none has.
        public var lastUsed: String?

        init(_ stored: StoredGrant) {
            id = stored.id
            subject = stored.grant.subject
            agent = stored.grant.agent
            scope = stored.grant.scope
            resource = stored.grant.resource
            policy = stored.justified.lineage.policy
            grantedAt = Timestamp.string(stored.grantedAt)
        }
    }

    public struct IdentityRow: Codable, Sendable, Equatable {
        public var id: String
        public var externalId: String?
        public var userName: String
        public var email: String?
        public var status: String
        public var groups: [String]
        public var sources: [String]
        public var statusSource: String?

        init(_ identity: Identity, precedence: [Source]) {
            id = identity.id
            externalId = identity.externalId(precedence: precedence)
            userName = identity.userName
            email = identity.email
            status = identity.status.rawValue
            groups = identity.groups.sorted()
            sources = identity.sources.keys.map(\.rawValue).sorted()
            statusSource = identity.statusSource?.rawValue
        }
    }

    public struct PlanStepRow: Codable, Sendable, Equatable {
        public var action: String
        public var subject: String?
        public var agent: String
        public var scope: String?
        public var resource: String?
        public var grant: String?
        public var reason: String
        public var sponsor: String?

        init(_ step: PlanStep) {
            action = step.action
            agent = step.agent
            reason = step.reason
            if let justified = step.grant {
                subject = justified.grant.subject
                scope = justified.grant.scope
                resource = justified.grant.resource
                grant = justified.grant.id
            }
            switch step {
            case .quarantine(_, let sponsor, _, _), .release(_, let sponsor, _): self.sponsor = sponsor
            case .grant, .revoke: break
            }
        }
    }

    public struct PlanRow: Codable, Sendable, Equatable {
        public var id: String
        public var scope: String
        public var held: Bool
        public var reason: String?
        public var status: String?
        public var steps: [PlanStepRow]

        init(_ plan: Plan, status: String? = nil) {
            id = plan.id
            scope = plan.scope.description
            held = plan.held != nil
            reason = plan.held
            self.status = status
            steps = plan.steps.map(PlanStepRow.init)
        }
    }

    public struct SourceRow: Codable, Sendable, Equatable {
        public var state: String
        public var mode: String?
        public var lastSuccess: String?
        public var lastError: String?
        public var lastScanUsers: Int?
        /// Entries the source holds that cannot be read or mapped; their people keep their state.
        public var unreadableEntries: Int?
    }

    public struct TargetRow: Codable, Sendable, Equatable {
        public var pending: Int
        public var oldestSeconds: Double
        /// Why the latest delivery attempt to the target failed, while changes wait.
        public var lastError: String?
    }

    public struct LagRow: Codable, Sendable, Equatable {
        public var userName: String
        public var source: String
        public var status: String
        public var statusSource: String
    }

    /// One source's revocation window (SPEC §6 `safety.window`).
    public struct WindowRow: Codable, Sendable, Equatable {
        /// Revocations the source caused within the window, counted against the safety limits.
        public var revocations: Int
        /// The window's length, as the configuration writes it.
        public var window: String
        /// The plan collecting the source's changes past the budget, while it waits.
        public var heldPlan: String?
        /// The revocations that plan holds.
        public var heldRevocations: Int?
    }

    public struct Status: Codable, Sendable, Equatable {
        public var ready: Bool
        public var notReady: [String]
        public var sources: [String: SourceRow]
        public var grants: Int
        public var identities: [String: Int]
        public var heldPlans: [PlanRow]
        public var targets: [String: TargetRow]
        public var directoryLag: [LagRow]
        public var policySet: String
        public var lastConfigError: String?
        /// Sources that revoked within their window or have changes held past it.
        public var safetyWindows: [String: WindowRow]?
        /// The long work in progress (a complete directory read, a full reconciliation), oldest
        /// first; absent when idle.
        public var progress: [ProgressRow]?
        /// Agents in force down to one active sponsor: one departure from quarantine (SPEC §15).
        public var agentsAtOneSponsor: [OneSponsorRow]
        /// This node's part among several daemons on PostgreSQL (SPEC §14); absent for one.
        public var ha: HARow?
    }

    /// Which node leads, this node's role and lag, and every node's last report.
    public struct HARow: Codable, Sendable, Equatable {
        public var node: String
        public var role: String
        public var leader: String?
        public var epoch: Int?
        /// When this node took the lease (absent while it follows): the end of the last failover.
        public var leadingSince: String?
        public var lagSeconds: Double
        public var listening: Bool
        public var nodes: [NodeRow]

        public struct NodeRow: Codable, Sendable, Equatable {
            public var node: String
            public var role: String
            public var address: String
            public var revision: Int
            public var seenSecondsAgo: Double
        }

        init(_ state: Leadership.State, lag: TimeInterval) {
            node = state.node
            role = state.leading ? "leader" : "follower"
            leader = state.leader
            epoch = state.epoch
            leadingSince = state.leadingSince.map(Timestamp.string)
            lagSeconds = (lag * 1_000).rounded() / 1_000
            listening = state.listening
            nodes = state.nodes.map {
                NodeRow(
                    node: $0.node, role: $0.role, address: $0.address, revision: $0.revision,
                    seenSecondsAgo: Double($0.age.components.seconds) + Double($0.age.components.attoseconds) / 1e18)
            }
        }
    }

    /// How far the long work in progress is: `done` of `total` in `phase`, with the rate so far.
    public struct ProgressRow: Codable, Sendable, Equatable {
        public var work: String
        public var phase: String
        public var done: Int?
        public var total: Int?
        /// `server estimate` or `previous read`: where `total` comes from.
        public var totalSource: String?
        public var startedAt: String
        public var ratePerSecond: Double?
        public var etaSeconds: Double?

        /// `directory read: people 1200 of about 5000 (24%), 800/s, about 5 s left`.
        public var summary: String {
            var text = WorkProgress.describe(work: work, phase: phase, done: done, total: total, totalSource: totalSource)
            if let ratePerSecond { text += ", \(Int(ratePerSecond))/s" }
            if let etaSeconds { text += ", about \(Int(etaSeconds.rounded(.up))) s left" }
            return text
        }

        package init(_ snapshot: WorkProgress.Snapshot, at now: Date) {
            work = snapshot.work
            phase = snapshot.phase
            done = snapshot.done
            total = snapshot.total
            totalSource = snapshot.totalSource
            startedAt = Timestamp.string(snapshot.startedAt)
            ratePerSecond = snapshot.rate(at: now).map { ($0 * 10).rounded() / 10 }
            etaSeconds = snapshot.secondsLeft(at: now).map { ($0 * 10).rounded() / 10 }
        }
    }

    public struct ExplainResult: Codable, Sendable, Equatable {
        public var allowed: Bool
        public var reason: String
        public var grant: String?
        public var policy: String?
        public var policySet: String?
        public var facts: [String]?
        public var versions: [String: String]?
        public var events: [String: String]?
        public var grantedAt: String?
        public var auditSeq: Int?
        public var identity: IdentityRow?
        public var agentStatus: String?
        public var audit: [String]
        /// The exception that decides the answer, if one does.
        public var exception: ExceptionRow?
    }

    /// An exception to policy, as `tether exceptions --json` prints it.
    public struct ExceptionRow: Codable, Sendable, Equatable {
        public var id, effect, subject, agent, scope, resource, reason, approver, createdAt: String
        public var until: String?

        init(_ exception: AccessException) {
            id = exception.id
            effect = exception.effect.rawValue
            subject = exception.subject
            agent = exception.agent
            scope = exception.scope
            resource = exception.resource
            until = exception.until.map(Timestamp.string)
            reason = exception.reason
            approver = exception.approver
            createdAt = Timestamp.string(exception.createdAt)
        }
    }

    /// What `tether exceptions grant|deny` asks for.
    public struct ExceptionBody: Codable, Sendable, Equatable {
        public var effect, subject, agent, scope, resource, reason: String
        /// A timestamp (`2026-12-31T00:00:00Z`) or a duration from now (`7d`).
        public var until: String?

        public init(effect: String, subject: String, agent: String, scope: String, resource: String, reason: String, until: String?) {
            self.effect = effect
            self.subject = subject
            self.agent = agent
            self.scope = scope
            self.resource = resource
            self.reason = reason
            self.until = until
        }
    }

    /// What adding or removing an exception did.
    public struct ExceptionResult: Codable, Sendable, Equatable {
        public var status: String
        public var exception: ExceptionRow
        public var plan: PlanRow
    }

    public struct ResyncResult: Codable, Sendable, Equatable {
        public var outcome: String
        public var plan: PlanRow
    }

    public struct IngestLine: Codable, Sendable, Equatable {
        public var line: Int
        public var status: String
        public var event: String?
        public var error: String?
        public var revoked: Int?
    }

    public struct Message: Codable, Sendable, Equatable {
        public var status: String
        public var message: String?
        public var plan: PlanRow?
    }

    public struct ErrorBody: Codable, Sendable, Equatable {
        public var error: String
        public var detail: String?
    }
}
