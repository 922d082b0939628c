import Foundation
import PostgresHarness
import TetherCore
import TetherStore

/// Every backend the conformance suite runs against. A new backend adds a case here.
enum Backend: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite
    /// A database of its own in the test process's throwaway cluster.
    case postgres

    var testDescription: String { rawValue }

    func make() async throws -> any StateStore & UsageStore & AuditCheckpointStore {
        switch self {
        case .sqlite:
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tether-store-\(UUID().uuidString)")
            return try SQLiteStateStore(path: folder.appendingPathComponent("tether.db").path)
        case .postgres:
            let cluster = try await PostgresCluster.shared()
            let database = try await cluster.makeDatabase()
            return try await PostgresStateStore(settings: PostgresSettings(url: cluster.url(database: database), poolSize: 8))
        }
    }
}

import Testing

enum Sample {
    static let time = Date(timeIntervalSince1970: 1_795_000_000)

    static func identity(_ user: String, status: IdentityStatus = .active, employeeNumber: String? = nil) -> Identity {
        let facts = IdentityFacts(
            externalId: "uuid-\(user)", userName: user, email: "\(user.capitalized)@Example.com",
            employeeNumber: employeeNumber, status: status, version: "v1")
        return Identity(
            id: "i_\(user)", userName: user, email: "\(user.capitalized)@Example.com", employeeNumber: employeeNumber,
            status: status, sources: [.ldap: facts])
    }

    static func grant(_ subject: String, _ scope: String = "tickets:read") -> JustifiedGrant {
        JustifiedGrant(
            grant: Grant(subject: subject, agent: "support-copilot", scope: scope, resource: "zendesk:queue/Support"),
            lineage: Lineage(policy: "support-tickets", policySet: "sha256:abc", identity: "i_\(subject)", facts: ["memberOf support"]))
    }

    static func granting(_ grants: [JustifiedGrant], identities: [Identity] = [], targets: [String] = []) -> Changeset {
        var changeset = Changeset(time: time)
        changeset.identities = identities
        changeset.steps = grants.map { .grant($0, reason: "policy support-tickets") }
        changeset.targets = targets
        changeset.audit = grants.map {
            AuditEntry(action: .grantGranted, actor: .ldap, time: time, fields: ["grant": $0.grant.id, "subject": $0.grant.subject, "agent": $0.grant.agent])
        }
        return changeset
    }
}
