import Foundation
import TetherConfig
import TetherCore
import TetherEngine

/// What the daemon knows about itself: the configuration in force, readiness, and the
/// last configuration error, for `/readyz` and `tether status`.
public actor DaemonState {
    public private(set) var loaded: LoadedConfiguration
    public let configPath: String
    public private(set) var lastConfigError: String?
    public private(set) var reloadedAt: Date?
    private var readiness: Set<Readiness> = []
    /// Why this node of several is not fit to answer (SPEC §14): a stale or lagging index.
    private var haProblems: [String] = []

    /// The conditions `/readyz` waits for.
    public enum Readiness: String, Sendable, CaseIterable {
        case httpListening = "http listener bound"
        case adminListening = "admin socket bound"
        case firstReconciliation = "first reconciliation done"
    }

    public init(loaded: LoadedConfiguration, configPath: String) {
        self.loaded = loaded
        self.configPath = configPath
    }

    public var configuration: Configuration { loaded.configuration }

    public func mark(_ condition: Readiness) { readiness.insert(condition) }

    /// What is still missing before the daemon is ready; empty when ready.
    public func notReadyReasons() -> [String] {
        Readiness.allCases.filter { !readiness.contains($0) }.map { "waiting: \($0.rawValue)" } + haProblems
    }

    func setHAProblems(_ problems: [String]) { haProblems = problems }

    func accept(_ next: LoadedConfiguration, at time: Date) {
        loaded = next
        lastConfigError = nil
        reloadedAt = time
    }

    func reject(_ error: String) { lastConfigError = error }
}

extension LoadedConfiguration {
    /// What the engine needs from this configuration, naming the file its agents come from.
    public var engineConfiguration: EngineConfiguration {
        var engine = configuration.engineConfiguration
        engine.configurationFile = file
        return engine
    }
}

extension Configuration {
    /// What the engine needs from this configuration.
    public var engineConfiguration: EngineConfiguration {
        var engine = EngineConfiguration(
            policySet: policySet, lifecycle: Lifecycle(precedence: lifecycle.precedence),
            correlator: Correlator(keys: lifecycle.correlate), safety: safety, targets: targets.map(\.id),
            versionTolerance: sources.hr.map { Self.seconds($0.tolerance) } ?? 300,
            exceptionMaxDuration: Self.seconds(exceptions.maxDuration), minSponsors: minSponsors)
        engine.reviewUnusedAfter = Self.seconds(reviews.unusedAfter)
        return engine
    }

    private static func seconds(_ duration: Duration) -> TimeInterval {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
