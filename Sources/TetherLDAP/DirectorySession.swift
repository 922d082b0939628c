import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Logging
import TetherConfig
import TetherCore
import TetherEngine
import TetherStore

/// The two syncrepl cookies (people and groups are followed by one session each), stored
/// together as the LDAP source's resume point.
///
/// A cookie only makes sense for the searches it came from: it carries their fingerprint,
/// and a cookie from other bases, filters or attributes is not used.
struct SyncCookie: Codable, Equatable, Sendable {
    var search: String
    var users: Data?
    var groups: Data?

    var encoded: Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return (try? encoder.encode(self)) ?? Data()
    }

    init(search: String, users: Data? = nil, groups: Data? = nil) {
        self.search = search
        self.users = users
        self.groups = groups
    }

    /// The stored resume point, or nil when there is none, it is not one of Tether's, or it
    /// belongs to other searches than `search`.
    init?(stored: Data?, search: String) {
        guard let stored, let decoded = try? JSONDecoder().decode(SyncCookie.self, from: stored),
            decoded.search == search
        else { return nil }
        self = decoded
    }

    /// A fingerprint of the searches a cookie belongs to.
    static func fingerprint(_ requests: [LDAPSearchRequest?]) -> String {
        requests.map { request in
            guard let request else { return "-" }
            return [request.base, "\(request.scope)", request.filter, request.attributes.joined(separator: ",")]
                .joined(separator: "|")
        }.joined(separator: "||")
    }
}

/// Which of the two searches a message or page belongs to.
enum DirectoryKind: String, Sendable {
    case users, groups
}

/// What the poll mode resumes from: the newest `modifyTimestamp` seen, or on Active
/// Directory the `highestCommittedUSN` read before the last search.
enum PollMarker: Sendable, Equatable {
    case timestamp(String?)
    case usn(USNWatermark)
}

/// One connection's worth of work for ``LDAPSourceService``: it keeps the directory mirror,
/// the committed cookie and the health across reconnections.
final class DirectorySession {
    let service: LDAPSourceService
    var configuration: LDAPConfiguration { service.configuration }
    var mapper: EntryMapper { service.mapper }
    var engine: Engine { service.engine }
    var logger: Logger { service.logger }

    /// The mirror; loaded from the store on first use.
    var mirror: DirectoryMirror
    var mirrorLoaded = false
    /// The cookie whose changes are applied; nil until loaded or after a required reload.
    var cookie: SyncCookie?
    var cookieLoaded = false
    /// `syncrepl` or `poll`, once chosen.
    var mode: String?
    /// True once this connection reached a consistent, applied state.
    var healthy = false
    /// True after a failure was reported and until the next success.
    var degraded = false
    /// A connection for point lookups during syncrepl's persist stage, opened on first need.
    var lookupConnection: LDAPConnection?
    /// The number of unreadable entries last recorded in the store.
    var reportedUnreadable: Int?
    /// Active Directory, polling: the Deleted Objects container whose tombstones each poll
    /// reads; nil when none is read (another server, or the server refused to show them).
    var tombstoneContainer: String?

    init(service: LDAPSourceService) {
        self.service = service
        self.mirror = DirectoryMirror(nested: service.configuration.groups?.nested ?? true)
    }

    /// Drops the resume point so that the next session reads everything (e-syncRefreshRequired,
    /// or a directory behind the syncrepl cookie or the USN watermark); returns whether there
    /// was one to drop. In poll mode the watermark lives only as long as the session's loop,
    /// which starts again with a complete read.
    func dropResumePoint() -> Bool {
        if mode == "poll" { return true }
        defer {
            cookie = nil
            cookieLoaded = true
        }
        return cookieLoaded && cookie != nil
    }

    /// Connects, chooses how to follow changes, and follows them until something fails.
    func run() async throws {
        healthy = false
        let connection = LDAPConnection(options: LDAPConnectionOptions(configuration), logger: logger)
        do {
            try await open(connection)
            try await loadMirror()
            let dse = try await connection.rootDSE()
            if let rangeSize = configuration.rangeSize, !dse.isActiveDirectory {
                // Another server would take `member;range=0-499` for an attribute it does not
                // have, and every group would look empty.
                throw LDAPError(
                    .configuration,
                    "rangeSize: \(rangeSize) asks for Active Directory's ranged retrieval, and \(configuration.url) "
                        + "is not an Active Directory domain controller (its root DSE lists neither the capability "
                        + "\(activeDirectoryCapabilityOID) nor highestCommittedUSN); remove rangeSize")
            }
            if try chooseSyncRepl(dse) {
                mode = "syncrepl"
                service.emit(.connected(mode: "syncrepl"))
                try await followSyncRepl(connection)
            } else {
                mode = "poll"
                service.emit(.connected(mode: "poll"))
                try await followByPolling(connection, dse: dse)
            }
        } catch {
            await connection.close()
            throw Task.isCancelled ? CancellationError() : error
        }
        await connection.close()
    }

    func open(_ connection: LDAPConnection) async throws {
        try await withTaskCancellationHandler {
            try await connection.open()
        } onCancel: {
            connection.interrupt()
        }
    }

    /// Reads the facts the engine holds from this source into the mirror, unless it holds them.
    func loadMirror() async throws {
        guard !mirrorLoaded else { return }
        // Folded one identity at a time: only each one's LDAP facts are kept.
        mirror.applied = try await service.store.reduceIdentities(into: [:]) { applied, identity in
            if let facts = identity.sources[.ldap], let key = facts.externalId { applied[key] = AppliedFacts(facts) }
        }
        mirrorLoaded = true
    }

    private func chooseSyncRepl(_ dse: LDAPEntry) throws -> Bool {
        let offered = dse["supportedControl"].contains(SyncOID.request)
        switch configuration.changeDetection {
        case .poll:
            return false
        case .auto:
            return offered
        case .syncrepl:
            guard offered else {
                throw LDAPError(
                    .unsupported,
                    "\(configuration.url) does not list the Content Synchronization control (\(SyncOID.request)) "
                        + "in its root DSE; enable syncprov (OpenLDAP) or content sync (389-DS), or set "
                        + "changeDetection: poll or auto")
            }
            return true
        }
    }

    // MARK: Reading

    /// Reads everything a search returns, page by page, multi-valued attributes in ranges
    /// followed to their end; throws unless every page and range succeeded.
    ///
    /// - Parameter search: what is read (`users`, `groups`, `tombstones`), for events and tests.
    func readAll(_ connection: LDAPConnection, _ request: LDAPSearchRequest, search kind: String) async throws -> [LDAPEntry] {
        var search = try await connection.startSearch(request, pageSize: configuration.pageSize)
        var entries: [LDAPEntry] = []
        do {
            while !search.isDone {
                var page = try await withTaskCancellationHandler {
                    try await connection.nextPage(&search)
                } onCancel: {
                    connection.interrupt()
                }
                try await RangedValues.complete(&page, of: request, on: connection, afterRange: service.tuning.afterRange)
                entries += page
                service.emit(.pageRead(search: kind, page: search.pages, entries: page.count))
                if let afterPage = service.tuning.afterPage { await afterPage(kind, search.pages) }
            }
        } catch {
            await connection.abandon(search)
            throw error
        }
        if search.references > 0 {
            logger.info(
                "search continuation references were not followed",
                metadata: ["ldap.base": "\(request.base)", "ldap.references": "\(search.references)"])
        }
        return entries
    }

    /// A complete read of people and groups, mapped into a model, with the people entries
    /// that cannot be mapped; throws unless every page succeeded.
    func readDirectory(_ connection: LDAPConnection) async throws -> (model: DirectoryModel, unreadable: [UnreadableEntry]) {
        let started = ContinuousClock.now
        var reader = DirectoryReader(configuration: configuration)
        let service = service
        reader.onRange = service.tuning.afterRange
        reader.onPage = { progress in
            service.emit(.pageRead(search: progress.search, page: progress.page, entries: progress.entries))
            service.emit(.readProgress(progress))
            if let afterPage = service.tuning.afterPage { await afterPage(progress.search, progress.page) }
        }
        let model: DirectoryModel
        let unreadable: [UnreadableEntry]
        do {
            (model, unreadable) = try await reader.read(connection)
        } catch {
            service.emit(.readEnded(users: nil))
            throw error
        }
        service.emit(.readEnded(users: model.userCount))
        warnUnreadable(unreadable)
        service.readTimer.recordNanoseconds(Int64((ContinuousClock.now - started) / .nanoseconds(1)))
        return (model, unreadable)
    }

    /// Maps the people entries of an incremental search; those that cannot be mapped are
    /// noted in the mirror, where the people they were keep their state.
    func mapUsers(_ entries: [LDAPEntry]) -> [DirectoryUser] {
        var users: [DirectoryUser] = []
        users.reserveCapacity(entries.count)
        var unreadable: [UnreadableEntry] = []
        for entry in entries {
            switch mapper.mapUser(entry) {
            case .user(let user):
                users.append(user)
                mirror.unreadable[user.key] = nil
            case .unreadable(let entry):
                unreadable.append(entry)
                mirror.noteUnreadable(entry)
            }
        }
        warnUnreadable(unreadable)
        return users
    }

    /// Tells the operator which entries cannot be mapped and why (the first ten by DN).
    func warnUnreadable(_ entries: [UnreadableEntry]) {
        guard !entries.isEmpty else { return }
        let shown = entries.prefix(10).map { "\($0.dn): \($0.reason)" }.joined(separator: "; ")
        logger.warning(
            "people entries that cannot be read or mapped were kept as they were, not taken as deleted; fix the entries or mapping.externalId",
            metadata: [
                "ldap.unreadable": "\(entries.count)", "ldap.externalId": "\(configuration.mapping.externalId)",
                "ldap.entries": "\(shown)",
            ])
    }

    /// Records the number of unreadable entries for `tether status` and `/metrics` when it changed.
    func reportUnreadable() async throws {
        let count = mirror.unreadable.count
        guard count != reportedUnreadable else { return }
        try await engine.recordUnreadableEntries(count, source: .ldap)
        reportedUnreadable = count
    }

    // MARK: Applying

    /// Hands the mirror's complete state to the engine (through the safety gates).
    @discardableResult
    func applySnapshot(cookie: Data?) async throws -> ReconcileOutcome {
        try await loadMirror()
        let users = mirror.snapshotFacts(keeping: try await storedFacts(of: mirror.unreadablePeople()))
        // The facts applied before are in `users` where they still hold; the table of them is
        // let go while the engine decides (it reads every stored identity, in brief) and built
        // again after.
        mirror.applied = [:]
        let outcome: ReconcileOutcome
        do {
            outcome = try await engine.applySnapshot(
                DirectorySnapshot(source: .ldap, users: users, cookie: cookie, mode: mode ?? "poll"))
        } catch {
            // The store holds what it held: read it back now, or before the next change is mapped.
            mirrorLoaded = false
            try? await loadMirror()
            throw error
        }
        switch outcome {
        case .held(let plan):
            logger.warning(
                "a complete LDAP read produced a plan the safety gates held; `tether plans` lists it",
                metadata: ["plan.id": "\(plan.id)", "plan.reason": "\(plan.held ?? "")", "ldap.users": "\(users.count)"])
            try await reloadApplied()
            service.emit(.snapshotApplied(users: users.count, held: true))
        case .applied, .planned:
            mirror.applied = Dictionary(users.compactMap { facts in facts.externalId.map { ($0, AppliedFacts(facts)) } }) { a, _ in a }
            service.emit(.snapshotApplied(users: users.count, held: false))
        }
        try await reportUnreadable()
        Self.returnFreedMemory()
        return outcome
    }

    /// The facts the engine holds from the directory for the people with these externalIds.
    private func storedFacts(of people: [String]) async throws -> [String: IdentityFacts] {
        guard !people.isEmpty else { return [:] }
        return try await service.store.inspect { reads in
            var facts: [String: IdentityFacts] = [:]
            for id in people { facts[id] = try reads.identity(source: .ldap, externalId: id)?.sources[.ldap] }
            return facts
        }
    }

    /// A complete read holds the directory several times over for a while (entries, people,
    /// facts, the plan) and frees most of it; glibc keeps freed memory in its arenas, so the
    /// daemon would stay at that peak. It is handed back to the system after each read.
    static func returnFreedMemory() {
        #if canImport(Glibc)
        // malloc_trim is glibc's (malloc.h, which the Glibc module does not export).
        typealias MallocTrim = @convention(c) (Int) -> Int32
        guard let symbol = dlsym(nil, "malloc_trim") else { return }
        _ = unsafeBitCast(symbol, to: MallocTrim.self)(0)
        #endif
    }

    /// Serves operators' resync requests with a complete read on a connection of its own,
    /// applied as a snapshot; a failed read fails the requests and changes nothing.
    /// With no waiters, this is the periodic complete read of syncrepl mode.
    func serveResyncs(_ waiters: [ResyncRequests.Waiter], cookie: Data?) async {
        let connection = LDAPConnection(options: LDAPConnectionOptions(configuration), logger: logger)
        do {
            try await open(connection)
            let (model, unreadable) = try await readDirectory(connection)
            await connection.close()
            mirror.adopt(model, unreadable: unreadable)
            let outcome = try await applySnapshot(cookie: cookie)
            for waiter in waiters { waiter.resume(returning: outcome) }
        } catch {
            await connection.close()
            logger.warning("an operator's LDAP resync failed", metadata: ["ldap.error": "\(error)"])
            for waiter in waiters { waiter.resume(throwing: error) }
        }
    }

    /// Sleeps for `duration` unless an operator asks for a resync first; returns whether one did.
    func sleepOrResync(_ duration: Duration) async throws -> Bool {
        if service.resyncs.isPending { return true }
        let requests = service.resyncs
        let clock = service.clock
        let asked = try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await clock.sleep(for: duration)
                return false
            }
            group.addTask {
                await requests.waitForRequest()
                return true
            }
            let first = try await group.next() ?? false
            group.cancelAll()
            return first
        }
        try Task.checkCancellation()
        return asked
    }

    /// Reads back what the engine holds, after a held snapshot left it unchanged.
    func reloadApplied() async throws {
        mirrorLoaded = false
        try await loadMirror()
    }

    /// Applies the people a change really changed; `cookie` commits with the last of them.
    ///
    /// - Precondition: the mirror's applied facts are loaded (``loadMirror()``): the changes
    ///   were worked out against them.
    func apply(_ changes: [IdentityFacts], cookie: Data?) async throws {
        guard !changes.isEmpty else {
            if let cookie { try await engine.recordSourceCookie(cookie, source: .ldap, mode: mode ?? "syncrepl") }
            return
        }
        for (index, facts) in changes.enumerated() {
            let outcome = try await engine.applyDirectoryEntry(
                facts, source: .ldap, cookie: index == changes.count - 1 ? cookie : nil, mode: mode ?? "poll")
            if outcome.status != .stale { mirror.recordApplied(facts) }
            service.emit(.entryApplied(externalId: facts.externalId ?? "", status: outcome.status.rawValue))
        }
    }

    /// Applies the deletion of a person, then whatever it changes for the people they managed.
    func applyDeletion(key: String, cookie: Data?, trigger: String) async throws {
        let (removed, reports) = mirror.model.removeUser(key: key)
        guard let removed else {
            try await apply([], cookie: cookie)
            return
        }
        let changes = mirror.changedFacts(forUsers: reports, trigger: trigger, now: service.wallClock.now())
        _ = try await engine.applyDirectoryDeletion(
            externalId: removed.externalId, source: .ldap, cookie: changes.isEmpty ? cookie : nil, mode: mode ?? "poll")
        mirror.applied[removed.externalId]?.status = .terminated
        service.emit(.deletionApplied(externalId: removed.externalId))
        if !changes.isEmpty { try await apply(changes, cookie: cookie) }
    }

    /// Records success; the first success after a failure is audited as `source.recovered`.
    func markHealthy() async throws {
        try await service.reportHealthy(mode: mode ?? "poll", wasDegraded: degraded)
        service.resyncs.setFollowing(true)
        degraded = false
        healthy = true
    }
}
