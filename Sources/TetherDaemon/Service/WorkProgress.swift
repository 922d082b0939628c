import Foundation
import ServiceLifecycle
import Synchronization
import TetherEngine
import TetherLDAP

/// The long work the daemon is doing now and how far it is: a complete directory read (groups,
/// then people, then applying them through the engine) and a full reconciliation. `tether
/// status` shows it, systemd's `STATUS=` line follows it, `/metrics` exports it as gauges.
///
/// Fed by the LDAP source's events and by the reconcile loop; reading it never waits. As a
/// service it publishes the latest state as `STATUS=` at most every `notifyInterval`, so a read
/// of many small pages does not flood systemd and a stalled one still shows its last count.
package final class WorkProgress: Service, Sendable {
    /// Where one piece of work stands.
    package struct Snapshot: Sendable, Equatable {
        /// `directory read` or `full reconciliation`.
        package var work: String
        /// The step within it: `groups`, `people`, `applying`, `planning`.
        package var phase: String
        /// What the phase has done: entries read.
        package var done: Int?
        /// What it expects to do, when known.
        package var total: Int?
        /// Where ``total`` comes from: `server estimate` or `previous read`.
        package var totalSource: String?
        /// When the work began.
        package var startedAt: Date
        /// When the phase began (the rate counts from here).
        package var phaseStartedAt: Date

        package init(
            work: String, phase: String, done: Int? = nil, total: Int? = nil, totalSource: String? = nil, startedAt: Date,
            phaseStartedAt: Date
        ) {
            self.work = work
            self.phase = phase
            self.done = done
            self.total = total
            self.totalSource = totalSource
            self.startedAt = startedAt
            self.phaseStartedAt = phaseStartedAt
        }

        /// Entries a second in this phase so far.
        package func rate(at now: Date) -> Double? {
            let elapsed = now.timeIntervalSince(phaseStartedAt)
            guard let done, done > 0, elapsed > 0 else { return nil }
            return Double(done) / elapsed
        }

        /// Seconds left at the current rate, when the total is known.
        package func secondsLeft(at now: Date) -> Double? {
            guard let done, let total, let rate = rate(at: now), rate > 0 else { return nil }
            return Double(max(0, total - done)) / rate
        }

        /// One line for systemd's `STATUS=`: `directory read: people 1200 of about 5000 (24%)`.
        package var line: String {
            WorkProgress.describe(work: work, phase: phase, done: done, total: total, totalSource: totalSource)
        }
    }

    /// `directory read: people 1200 of about 5000 (24%)`: "about" when the total is the
    /// previous read's, not the server's estimate.
    package static func describe(work: String, phase: String, done: Int?, total: Int?, totalSource: String?) -> String {
        var text = "\(work): \(phase)"
        if let done {
            text += " \(done)"
            if let total, total > 0 {
                text += " of \(totalSource == "previous read" ? "about " : "")\(total) (\(min(100, done * 100 / total))%)"
            }
        }
        return text
    }

    private struct State {
        /// The work in progress, oldest first: a read and a reconciliation can overlap.
        var works: [Snapshot] = []
        /// People in the last complete read: the expected total when the server gives no estimate.
        var previousPeople: Int?
        /// The last line sent as `STATUS=`; nil before any work.
        var published: String?
    }

    private let state: Mutex<State>
    private let notifier: SystemdNotifier
    private let now: @Sendable () -> Date
    /// The time between two `STATUS=` updates.
    private let notifyInterval: Duration

    /// - Parameters:
    ///   - previousPeople: people in the last complete read, from the store; the expected total
    ///     of the next read when the server gives no estimate.
    package init(
        notifier: SystemdNotifier, previousPeople: Int?, notifyInterval: Duration = .milliseconds(250),
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.state = Mutex(State(previousPeople: previousPeople))
        self.notifier = notifier
        self.notifyInterval = notifyInterval
        self.now = now
    }

    /// The work in progress, oldest first; empty when the daemon is idle.
    package var current: [Snapshot] { state.withLock { $0.works } }

    /// Publishes the state as `STATUS=` when it changed, until a graceful shutdown.
    package func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            publish()
            try await gracefulShutdownAwareSleep(notifyInterval)
        }
    }

    /// Sends the work in progress as `STATUS=`, or `serving` once it ended, when that changed.
    func publish() {
        let line: String? = state.withLock { state in
            let line = state.works.isEmpty ? (state.published == nil ? nil : "serving") : state.works.map(\.line).joined(separator: "; ")
            guard let line, line != state.published else { return nil }
            state.published = line == "serving" ? nil : line
            return line
        }
        if let line { notifier.notify("STATUS=\(line)") }
    }

    /// Follows the LDAP source: pages of a complete read, its end, and the engine applying it.
    package func observe(_ event: LDAPSourceEvent) {
        switch event {
        case .readProgress(let progress):
            let people = progress.search == "users"
            update(work: "directory read", phase: people ? "people" : "groups", done: progress.read) { state in
                if let estimate = progress.estimate { return (estimate, "server estimate") }
                return people ? state.previousPeople.map { ($0, "previous read") } : nil
            }
        case .refreshProgress(let search, let messages, let fromCookie):
            // A syncrepl refresh: entries when it reads the whole content, changes when it resumes.
            let phase = fromCookie ? "\(search) changes (syncrepl refresh)" : "\(search == "users" ? "people" : search) (syncrepl refresh)"
            update(work: "directory read", phase: phase, done: messages) { state in
                search == "users" && !fromCookie ? state.previousPeople.map { ($0, "previous read") } : nil
            }
        case .refreshCompleted("users", _, _):
            update(work: "directory read", phase: "applying", done: nil) { _ in nil }
        case .readEnded(let users?):
            state.withLock { $0.previousPeople = users }
            update(work: "directory read", phase: "applying", done: nil) { _ in nil }
        case .snapshotApplied(let users, _):
            // A syncrepl refresh is not a paged read: its size is known once applied.
            state.withLock { $0.previousPeople = users }
            finish(work: "directory read")
        case .readEnded(nil), .degraded:
            finish(work: "directory read")
        default:
            break
        }
    }

    /// Marks the start of `work` (e.g. a full reconciliation) in `phase`.
    package func begin(_ work: String, phase: String) {
        update(work: work, phase: phase, done: nil) { _ in nil }
    }

    /// Follows a full reconciliation: identities planned of all there are, then the commit.
    package func observe(_ reconciliation: ReconcileProgress, work: String = "full reconciliation") {
        switch reconciliation {
        case .planning(let done, let total):
            update(work: work, phase: "identities planned", done: done) { _ in (total, "identities") }
        case .committing(let changes):
            update(work: work, phase: "committing \(changes) changes", done: nil) { _ in nil }
        }
    }

    /// Follows a review campaign's close: items closed of all there are, then the commit.
    package func observe(_ close: ReviewCloseProgress, work: String) {
        switch close {
        case .closing(let done, let total):
            update(work: work, phase: "items closed", done: done) { _ in (total, "items") }
        case .committing(let changes):
            update(work: work, phase: "committing \(changes) changes", done: nil) { _ in nil }
        }
    }

    /// Ends `work` if it is in progress.
    package func finish(work: String) {
        state.withLock { state in state.works.removeAll { $0.work == work } }
    }

    private func update(work: String, phase: String, done: Int?, total: (State) -> (Int, String)?) {
        let date = now()
        state.withLock { state in
            let expected = total(state)
            let index = state.works.firstIndex { $0.work == work }
            var snapshot = index.map { state.works[$0] } ?? Snapshot(work: work, phase: phase, startedAt: date, phaseStartedAt: date)
            if snapshot.phase != phase {
                snapshot.phase = phase
                snapshot.phaseStartedAt = date
            }
            snapshot.done = done
            snapshot.total = expected?.0
            snapshot.totalSource = expected?.1
            if let index { state.works[index] = snapshot } else { state.works.append(snapshot) }
        }
    }
}
