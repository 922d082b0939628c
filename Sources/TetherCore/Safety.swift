import Foundation

/// Limits that hold a plan for operator approval instead of applying it (SPEC §6).
public struct SafetyLimits: Sendable, Hashable, Codable {
    public var maxRevocationsPerRun: Int
    public var maxRevocationRatio: Double
    public var minGrantsForRatio: Int
    /// How long, in seconds, the revocations one source causes count together against the
    /// two limits above (`safety.window`); see ``RevocationWindow``.
    public var window: TimeInterval

    public init(
        maxRevocationsPerRun: Int = 500, maxRevocationRatio: Double = 0.2, minGrantsForRatio: Int = 100,
        window: TimeInterval = 600
    ) {
        self.maxRevocationsPerRun = maxRevocationsPerRun
        self.maxRevocationRatio = maxRevocationRatio
        self.minGrantsForRatio = minGrantsForRatio
        self.window = window
    }
}

/// Where a plan comes from, as far as the safety gates care.
public enum PlanOrigin: Sendable, Hashable {
    /// One person's leaver stated explicitly (HR leaver, SCIM DELETE or `active:false`): never held.
    case explicitLeaver
    /// A full scan of a source that returned this many users.
    case sourceScan(users: Int)
    /// Anything else: a mover, a policy reload, a timer, an operator's resync.
    case other
}

extension SafetyLimits {
    /// Why `plan` must be held, or nil when it may be applied.
    /// - Parameter existingGrants: the number of grants in the store before the plan.
    public func holdReason(for plan: Plan, existingGrants: Int, origin: PlanOrigin) -> String? {
        if origin == .explicitLeaver { return nil }
        let revocations = plan.revocations
        if case .sourceScan(let users) = origin, users == 0, !plan.isEmpty {
            return "source scan returned zero users"
        }
        if revocations > maxRevocationsPerRun {
            return "would revoke \(revocations) grants, more than maxRevocationsPerRun \(maxRevocationsPerRun)"
        }
        if existingGrants >= minGrantsForRatio, existingGrants > 0 {
            let ratio = Double(revocations) / Double(existingGrants)
            if ratio > maxRevocationRatio {
                let percent = (ratio * 1000).rounded() / 10
                return "would revoke \(revocations) of \(existingGrants) grants (\(percent)%), more than maxRevocationRatio \(maxRevocationRatio)"
            }
        }
        return nil
    }
}
