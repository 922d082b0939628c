import Foundation
import Hummingbird
import TetherConfig
import TetherCore
import TetherStore

/// Last uses in `tether grants` and `tether agents`, and their `--unused D` (SPEC §15 "Usage").
extension AdminController {
    /// The grant rows with their last use; with `unused`, only those no check allowed within it
    /// (a grant never used is unused since it was granted). 400 for a bad duration.
    func usedGrants(_ grants: [StoredGrant], unused: String?) async throws -> Response {
        try await rows(unused: unused) { cutoff in
            let lastUsed = try await lastUses().grants
            return grants.compactMap { stored -> AdminModels.GrantRow? in
                let used = lastUsed[stored.id]
                if let cutoff, (used.map { Double($0) } ?? stored.grantedAt.timeIntervalSince1970) >= cutoff { return nil }
                var row = AdminModels.GrantRow(stored)
                row.lastUsed = used.map(Self.time)
                return row
            }
        }
    }

    /// The agent rows with their last use; with `unused`, only those no check allowed within it
    /// (an agent never used is unused since its oldest grant was made, or at all without one).
    /// 400 for a bad duration.
    func usedAgents(_ agents: [AdminModels.AgentRow], unused: String?) async throws -> Response {
        try await rows(unused: unused) { cutoff in
            let lastUsed = try await lastUses().agents
            let earliest = cutoff == nil ? [:] : try await store.earliestGrants()
            return agents.compactMap { row -> AdminModels.AgentRow? in
                let used = lastUsed[row.id]
                if let cutoff, let since = used.map({ Double($0) }) ?? earliest[row.id]?.timeIntervalSince1970, since >= cutoff {
                    return nil
                }
                var row = row
                row.lastUsed = used.map(Self.time)
                return row
            }
        }
    }

    /// The rows `build` lists for the cutoff of `unused` (nil without one), or 400 naming a bad duration.
    private func rows<Row: Encodable>(unused: String?, _ build: (Double?) async throws -> [Row]) async throws -> Response {
        let cutoff: Double?
        do {
            cutoff = try Self.cutoff(unused)
        } catch let invalid as InvalidDuration {
            return try json(invalid.body, status: .badRequest)
        }
        return try json(try await build(cutoff))
    }

    /// The flushed last uses with those the check index holds since the last flush.
    func lastUses() async throws -> Usage {
        var usage = Usage(grants: try await store.grantUsage(), agents: try await store.agentUsage())
        usage.merge(engine.index.usage.pending())
        return usage
    }

    /// An `unused` that is not a duration, with the operator's message.
    struct InvalidDuration: Error {
        let body: AdminModels.ErrorBody
    }

    /// The time, in seconds since 1970, before which a last use counts as unused for `text`;
    /// nil without one.
    private static func cutoff(_ text: String?) throws -> Double? {
        guard let text else { return nil }
        guard let duration = ConfigurationDuration.parse(text), duration > .zero else {
            throw InvalidDuration(body: AdminModels.ErrorBody(
                error: "invalid duration '\(text)' for --unused; expected a whole number and a unit: 30s, 15m, 12h or 30d"))
        }
        return Date().timeIntervalSince1970 - Double(duration.components.seconds)
    }

    private static func time(_ second: Int64) -> String { Timestamp.string(Date(timeIntervalSince1970: Double(second))) }
}
