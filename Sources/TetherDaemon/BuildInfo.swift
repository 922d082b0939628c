import CBuildStamp

/// Which Tether this is: the release version, and the commit and date of the build when the
/// build was stamped (scripts/package stamps its builds; a plain `swift build` is not, and
/// says "unknown" rather than guess). `tether --version`, the start log line and
/// `tether_build_info` all print this one value.
public struct BuildInfo: Sendable, Equatable, CustomStringConvertible {
    /// The release version: the only place it is written (the package takes it from the binary).
    public static let version = "0.1.0"

    /// This binary's build.
    public static let current = BuildInfo(
        version: version, commit: String(cString: tether_build_commit()), date: String(cString: tether_build_date()))

    /// The release version, e.g. `0.1.0`.
    public let version: String
    /// The commit the build was made from (`-dirty` when the tree had changes), nil when unknown.
    public let commit: String?
    /// When the build was made (UTC, ISO 8601), nil when unknown.
    public let date: String?

    /// Empty strings (an unstamped build) are unknown values.
    public init(version: String, commit: String?, date: String?) {
        self.version = version
        self.commit = commit.flatMap { $0.isEmpty ? nil : $0 }
        self.date = date.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// `tether 0.1.0 (commit 414874a1c2d3, built 2026-12-05T09:00:00Z)`, with "unknown commit"
    /// and "unknown build date" for what the build does not know.
    public var description: String {
        "tether \(version) (\(commit.map { "commit \($0)" } ?? "unknown commit"), \(date.map { "built \($0)" } ?? "unknown build date"))"
    }

    /// The commit as a metric label or log value: the commit, or `unknown`.
    public var commitLabel: String { commit ?? "unknown" }
}
