import Foundation
import TetherCore
import TetherStore

/// One source's revocation window as `tether status` and `/metrics` show it.
public struct SafetyWindowState: Sendable, Hashable {
    /// The revocations the window counts now.
    public var revocations: Int
    /// The plan collecting the source's changes past its budget, if one waits.
    public var held: Plan?
}

extension Engine {
    /// Every source's window as it stands at `now`, read in one read transaction.
    public func safetyWindows(at now: Date) async throws -> [Source: SafetyWindowState] {
        let decider = decider
        let length = configuration.safety.window
        return try await store.inspect { reads in
            var windows: [Source: SafetyWindowState] = [:]
            for source in [Source.ldap, .scim, .hr] {
                windows[source] = SafetyWindowState(
                    revocations: try reads.revocationWindow(source)?.at(now, length: length).revocations ?? 0,
                    held: try decider.heldWindowPlan(source, reads: reads)?.plan)
            }
            return windows
        }
    }
}
