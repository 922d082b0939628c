import Foundation

/// When grants and agents were last allowed by a check (SPEC §15 "Usage"), kept in whole
/// seconds: the check index collects them in memory and a flusher writes them in batches.
public protocol UsageStore: Sendable {
    /// Records last uses, keeping the later of the stored and the given time for each. Uses of
    /// grants that no longer exist are dropped: a revoked grant's usage goes with it.
    func recordUsage(_ usage: Usage) async throws
    /// The recorded last use of each grant that exists, by grant id.
    func grantUsage() async throws -> [String: Int64]
    /// The recorded last use of each agent, by agent id (a handful of rows: `/metrics` reads it).
    func agentUsage() async throws -> [String: Int64]
    /// When each agent's oldest grant was made, by agent id: an agent never used is unused
    /// since then.
    func earliestGrants() async throws -> [String: Date]
}

/// Last uses in seconds since 1970, by grant id and by agent id.
public struct Usage: Sendable, Hashable {
    /// The last allowed check of each grant, by grant id.
    public var grants: [String: Int64]
    /// The last allowed check through each agent, by agent id.
    public var agents: [String: Int64]

    public init(grants: [String: Int64] = [:], agents: [String: Int64] = [:]) {
        self.grants = grants
        self.agents = agents
    }

    /// Whether nothing is recorded.
    public var isEmpty: Bool { grants.isEmpty && agents.isEmpty }

    /// Takes the later time of each grant and agent in `other`.
    public mutating func merge(_ other: Usage) {
        grants.merge(other.grants, uniquingKeysWith: max)
        agents.merge(other.agents, uniquingKeysWith: max)
    }
}
