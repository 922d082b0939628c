import Foundation
import Logging
import Metrics
import ServiceLifecycle
import TetherConfig
import TetherCore
import TetherEngine
import TetherStore

/// Something the LDAP source did, for observers (metrics, tests, `tether status`).
public enum LDAPSourceEvent: Sendable, Hashable {
    /// Connected and bound; changes are detected by `mode` (`syncrepl` or `poll`).
    case connected(mode: String)
    /// One page of a paged read arrived (`search` is `users` or `groups`).
    case pageRead(search: String, page: Int, entries: Int)
    /// A complete read of the directory advanced by one page.
    case readProgress(ReadProgress)
    /// A complete read ended: with this many people, who go to the engine next, or nil when it failed.
    case readEnded(users: Int?)
    /// A syncrepl refresh in progress: `messages` received so far (entries, and presences or
    /// deletions when it resumed from a cookie).
    case refreshProgress(search: String, messages: Int, fromCookie: Bool)
    /// A syncrepl refresh finished; `messages` counts what the server sent, `fromCookie`
    /// says whether it resumed from a stored cookie.
    case refreshCompleted(search: String, messages: Int, fromCookie: Bool)
    /// A complete read was handed to the engine; `held` when the safety gates held its plan.
    case snapshotApplied(users: Int, held: Bool)
    /// One person's changed facts were applied (syncrepl message or poll hit).
    case entryApplied(externalId: String, status: String)
    /// A person's entry was deleted and applied as a leaver.
    case deletionApplied(externalId: String)
    /// An incremental poll finished with this many changed people.
    case pollCompleted(changed: Int)
    /// The source failed and is degraded; nothing is revoked because of it.
    case degraded(reason: String)
    /// The source answers again after being degraded.
    case recovered
}

/// Reads people and groups from an LDAP directory and feeds them to the engine (SPEC §3, §4).
///
/// A swift-service-lifecycle `Service`: `run()` connects, chooses syncrepl (RFC 4533) or
/// polling, applies complete reads with `Engine.applySnapshot` (through the safety gates)
/// and single changes with `applyDirectoryEntry` / `applyDirectoryDeletion`, and on any
/// failure marks the source degraded (nothing revoked), then reconnects with exponential
/// backoff and jitter. It ends on cancellation or graceful shutdown.
///
/// ```swift
/// let ldap = LDAPSourceService(configuration: config.sources.ldap!, engine: engine, store: store, logger: logger)
/// let group = ServiceGroup(services: [ldap, …], logger: logger)
/// try await group.run()
/// ```
public final class LDAPSourceService: Service, Sendable {
    /// Knobs tests and operators rarely need.
    public struct Tuning: Sendable {
        /// The first wait before reconnecting after a failure; doubled per failure, with jitter.
        public var initialBackoff: Duration
        /// The longest wait between reconnection attempts.
        public var maximumBackoff: Duration
        /// Called after each page of a paged read (`users` or `groups`, page number); the
        /// read waits for it. Lets tests act in the middle of a scan.
        package var afterPage: (@Sendable (_ search: String, _ page: Int) async -> Void)?
        /// Called after each range of a multi-valued attribute read in ranges (the entry's
        /// DN, the first value's index); the read waits for it.
        package var afterRange: (@Sendable (_ dn: String, _ low: Int) async -> Void)?
        /// A syncrepl refresh reports its progress every this many messages.
        package var refreshProgressEvery = 1_000
        /// A syncrepl refresh hands its messages to the mirror this many at a time, while
        /// it runs: a few megabytes of entries.
        package var refreshBatch = 2_000

        /// Creates tuning values; defaults: 1 s first backoff, 60 s at most.
        public init(initialBackoff: Duration = .seconds(1), maximumBackoff: Duration = .seconds(60)) {
            self.initialBackoff = initialBackoff
            self.maximumBackoff = maximumBackoff
        }
    }

    /// The `sources.ldap` configuration in force.
    public let configuration: LDAPConfiguration
    let engine: Engine
    let store: any StateReading
    let logger: Logger
    let clock: any Clock<Duration>
    let wallClock: any WallClock
    let tuning: Tuning
    let observer: (@Sendable (LDAPSourceEvent) -> Void)?
    let mapper: EntryMapper
    let degradedGauge = Gauge(label: "tether_ldap_source_degraded")
    let reconnects = Counter(label: "tether_ldap_reconnects_total")
    let readTimer = Metrics.Timer(label: "tether_ldap_full_read_seconds")
    let resyncs = ResyncRequests()

    /// Creates the source; nothing happens until `run()`.
    ///
    /// - Parameters:
    ///   - engine: receives snapshots, single changes and health.
    ///   - store: read once at start for the facts the engine already holds from LDAP, so
    ///     versions stay monotonic across restarts.
    ///   - clock: sleeps between polls and reconnections.
    ///   - wallClock: scheduling of full scans and versions of changes without an entry.
    ///   - observer: told of every ``LDAPSourceEvent``; must not block.
    public init(
        configuration: LDAPConfiguration, engine: Engine, store: any StateReading, logger: Logger,
        clock: any Clock<Duration> = ContinuousClock(), wallClock: any WallClock = SystemWallClock(),
        tuning: Tuning = Tuning(), observer: (@Sendable (LDAPSourceEvent) -> Void)? = nil
    ) {
        self.configuration = configuration
        self.engine = engine
        self.store = store
        self.logger = logger
        self.clock = clock
        self.wallClock = wallClock
        self.tuning = tuning
        self.observer = observer
        self.mapper = EntryMapper(configuration)
    }

    /// Runs until cancelled or until graceful shutdown: connect, read, follow changes;
    /// on failure, degrade and retry with backoff.
    public func run() async throws {
        await cancelWhenGracefulShutdown { [self] in
            await self.superviseSessions()
        }
    }

    /// Reads the whole directory again now and applies it as one snapshot, through the
    /// safety gates (`tether resync --full --source ldap`); returns what the engine did.
    ///
    /// - Throws: ``LDAPError`` `.unreachable` at once when the source is not connected, or
    ///   the read's failure (the source then stays as it was: nothing is revoked).
    public func resync() async throws -> ReconcileOutcome {
        try await resyncs.request()
    }

    func superviseSessions() async {
        let session = DirectorySession(service: self)
        var failures = 0
        while !Task.isCancelled {
            do {
                try await session.run()
                failures = 0
            } catch is CancellationError {
                return
            } catch {
                if Task.isCancelled { return }
                if session.healthy { failures = 0 }
                failures += 1
                session.healthy = false
                session.degraded = true
                // An unusable cookie is dropped and everything read again at once (a complete
                // refresh, through the safety gates); the reason is audited as source.degraded
                // and the refresh's success as source.recovered. Without a cookie to drop, the
                // failure is an ordinary one, retried with backoff.
                if let code = (error as? LDAPError)?.code, code == .syncRefreshRequired || code == .staleResumePoint,
                    session.dropResumePoint()
                {
                    await reportDegraded(
                        error, mode: session.mode,
                        action: "its resume point is dropped and the whole directory read again, through the safety gates",
                        announce: true)
                    continue
                }
                await reportDegraded(error, mode: session.mode)
                reconnects.increment()
                do {
                    try await clock.sleep(for: backoff(after: failures))
                } catch {
                    return
                }
            }
        }
    }

    /// Exponential backoff with full jitter between half and the whole step.
    func backoff(after failures: Int) -> Duration {
        let exponent = min(failures - 1, 16)
        let step = min(tuning.initialBackoff * (1 << exponent), tuning.maximumBackoff)
        return step * Double.random(in: 0.5...1.0)
    }

    /// Marks the source degraded for `error`; `announce` audits the reason even when the
    /// source already was degraded.
    func reportDegraded(
        _ error: any Error, mode: String?, action: String = "nothing is revoked because of it", announce: Bool = false
    ) async {
        let reason = String(describing: error)
        resyncs.setFollowing(false, error: reason)
        logger.warning("LDAP source degraded; \(action)", metadata: ["ldap.error": "\(reason)"])
        degradedGauge.record(1)
        emit(.degraded(reason: reason))
        do {
            try await engine.recordSourceHealth(.ldap, error: reason, mode: mode, announce: announce)
        } catch {
            logger.error("cannot record the LDAP source's health", metadata: ["error": "\(error)"])
        }
    }

    func reportHealthy(mode: String, wasDegraded: Bool) async throws {
        degradedGauge.record(0)
        try await engine.recordSourceHealth(.ldap, error: nil, mode: mode)
        if wasDegraded {
            logger.notice("LDAP source recovered", metadata: ["ldap.mode": "\(mode)"])
            emit(.recovered)
        }
    }

    func emit(_ event: LDAPSourceEvent) {
        observer?(event)
    }
}
