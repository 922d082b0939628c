import Foundation
import TetherCore
import TetherEngine

extension DirectorySession {
    /// syncrepl mode: one refreshAndPersist search for people and one for groups, each on
    /// its own connection. The refresh brings the mirror up to date (from the stored cookie
    /// when there is one) and is applied as one snapshot through the safety gates; after
    /// it, every persist message is applied as it comes, its cookie stored with it.
    func followSyncRepl(_ usersConnection: LDAPConnection) async throws {
        if !cookieLoaded {
            cookie = SyncCookie(stored: try await engine.cookie(for: .ldap), search: searchFingerprint)
            cookieLoaded = true
        }
        var groupsConnection: LDAPConnection?
        if mapper.groupsRequest != nil {
            let connection = LDAPConnection(options: LDAPConnectionOptions(configuration), logger: logger)
            groupsConnection = connection
            do {
                try await open(connection)
            } catch {
                await connection.close()
                throw error
            }
        }
        do {
            try await synchronise(usersConnection, groupsConnection)
        } catch {
            await groupsConnection?.close()
            await closeLookups()
            throw error
        }
        await groupsConnection?.close()
        await closeLookups()
    }

    private func closeLookups() async {
        await lookupConnection?.close()
        lookupConnection = nil
    }

    /// People searches and group searches arrive on two connections, in no common order.
    /// When a group names a DN the mirror does not know, it is most often a person renamed
    /// or added whose own message is still on its way: the entry is read now and applied
    /// first, so the person keeps (or gains) the membership without a revoke in between.
    private func applyUnknownMembers(of group: DirectoryGroup, now: Date) async throws {
        let unknown = group.memberDNs.filter { !mirror.model.knows(dn: $0) }
        // A bulk change is left to the people search and the next complete read.
        guard !unknown.isEmpty, unknown.count <= 20 else { return }
        for dn in unknown where DistinguishedName.isWithin(dn, base: configuration.users.base) {
            let found: LDAPEntry?
            do {
                found = try await lookUp(dn)
            } catch {
                // Only a shortcut: the people search brings the same change a moment later.
                logger.info("a member lookup failed", metadata: ["ldap.dn": "\(dn)", "ldap.error": "\(error)"])
                await closeLookups()
                return
            }
            guard let entry = found, let user = mapper.user(entry) else { continue }
            rekeyIfNeeded(user)
            let affected = mirror.model.upsertUser(user)
            try await apply(mirror.changedFacts(forUsers: affected, trigger: user.version, now: now), cookie: nil)
        }
    }

    /// The person entry at `dn`, if it exists and matches the people filter.
    private func lookUp(_ dn: String) async throws -> LDAPEntry? {
        let connection: LDAPConnection
        if let open = lookupConnection {
            connection = open
        } else {
            connection = LDAPConnection(options: LDAPConnectionOptions(configuration), logger: logger)
            try await self.open(connection)
            lookupConnection = connection
        }
        var request = mapper.usersRequest
        request.base = dn
        request.scope = .base
        do {
            var search = try await connection.startSearch(request, pageSize: nil)
            var entries: [LDAPEntry] = []
            while !search.isDone { entries += try await connection.nextPage(&search) }
            return entries.first
        } catch let error as LDAPError where error.resultCode == 32 {
            return nil
        }
    }

    private func synchronise(_ usersConnection: LDAPConnection, _ groupsConnection: LDAPConnection?) async throws {
        let stall = configuration.timeout
        let users = SyncReplSession(connection: usersConnection, request: mapper.usersRequest, stallTimeout: stall)
        let groups = groupsConnection.flatMap { connection in
            mapper.groupsRequest.map { SyncReplSession(connection: connection, request: $0, stallTimeout: stall) }
        }
        let refreshed = try await refresh(usersConnection, users: users, groups: groups)
        try await markHealthy()
        try await applySnapshot(cookie: refreshed.encoded)
        cookie = refreshed
        try await persist(users: users, groups: groups)
    }

    /// The refresh stage of both searches, taken into the mirror as its messages arrive;
    /// returns the cookie it ends at. A whole directory's entries (a first refresh) are never
    /// held at once, and none are held once it returns.
    ///
    /// A refresh cut off leaves the model part-way, which is harmless: nothing reaches the
    /// engine before a refresh completes, and the next one (from the same cookie, or the
    /// whole content) brings every entry it names to the directory's state again.
    private func refresh(
        _ usersConnection: LDAPConnection, users: SyncReplSession, groups: SyncReplSession?
    ) async throws -> SyncCookie {
        // A cookie only describes changes: after a restart the mirror needs a baseline first.
        if let cookie, mirror.model.isEmpty, cookie.users != nil {
            let (model, unreadable) = try await readDirectory(usersConnection)
            mirror.adopt(model, unreadable: unreadable)
        }

        let resumeFrom = cookie ?? SyncCookie(search: searchFingerprint)
        let usersCookie = resumeFrom.users
        let groupsCookie = groups == nil ? nil : resumeFrom.groups
        var usersTaken = RefreshAbsorption(kind: .users, fromCookie: usersCookie != nil)
        var groupsTaken = groups.map { _ in RefreshAbsorption(kind: .groups, fromCookie: groupsCookie != nil) }
        let (batches, delivered) = AsyncThrowingStream<(DirectoryKind, [SyncMessage]), any Error>.makeStream()
        let (service, every, batch) = (service, service.tuning.refreshProgressEvery, service.tuning.refreshBatch)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    async let usersRefresh = users.refresh(
                        from: usersCookie, delivering: SyncDelivery(every: batch) { delivered.yield((.users, $0)) },
                        reportingEvery: every
                    ) { messages in
                        service.emit(.refreshProgress(search: "users", messages: messages, fromCookie: usersCookie != nil))
                    }
                    async let groupsRefresh = groups?.refresh(
                        from: groupsCookie, delivering: SyncDelivery(every: batch) { delivered.yield((.groups, $0)) },
                        reportingEvery: every
                    ) { messages in
                        service.emit(.refreshProgress(search: "groups", messages: messages, fromCookie: groupsCookie != nil))
                    }
                    let (userMessages, groupMessages) = try await (usersRefresh, groupsRefresh)
                    if let groupMessages { delivered.yield((.groups, groupMessages)) }
                    delivered.yield((.users, userMessages))
                    delivered.finish()
                } catch {
                    delivered.finish(throwing: error)
                }
            }
            for try await (kind, messages) in batches {
                switch kind {
                case .users: absorb(messages, into: &usersTaken)
                case .groups: if groupsTaken != nil { absorb(messages, into: &groupsTaken!) }
                }
            }
            try await group.waitForAll()
        }
        try Task.checkCancellation()

        var refreshed = SyncCookie(search: searchFingerprint)
        if let groupsTaken {
            refreshed.groups = groupsTaken.last ?? groupsCookie
            service.emit(.refreshCompleted(search: "groups", messages: groupsTaken.messages, fromCookie: groupsCookie != nil))
        }
        warnUnreadable(usersTaken.unreadable)
        refreshed.users = usersTaken.last ?? usersCookie
        service.emit(.refreshCompleted(search: "users", messages: usersTaken.messages, fromCookie: usersCookie != nil))
        return refreshed
    }

    var searchFingerprint: String { SyncCookie.fingerprint([mapper.usersRequest, mapper.groupsRequest]) }

    /// What a refresh stage has taken into the mirror so far, for one search.
    struct RefreshAbsorption {
        let kind: DirectoryKind
        /// Without a cookie the refresh is the whole content, and it replaces the mirror.
        let fromCookie: Bool
        /// Entries the refresh named, by key: those it did not name are deleted at its end.
        var seen: Set<String> = []
        /// Its last cookie.
        var last: Data?
        var unreadable: [UnreadableEntry] = []
        var messages = 0
    }

    /// Brings the mirror up to date with a batch of a refresh stage's messages.
    ///
    /// With a cookie, entries come as changes; a present phase (RFC 4533 §3.4) ends with
    /// everything not named in it deleted, a delete phase names its deletions. Without one,
    /// whatever the refresh did not name is deleted at its end.
    func absorb(_ messages: [SyncMessage], into taken: inout RefreshAbsorption) {
        let kind = taken.kind
        var changedUsers: [DirectoryUser] = []
        func removeUnseen() {
            switch kind {
            case .users:
                for key in mirror.model.userKeys where !taken.seen.contains(key) {
                    _ = mirror.model.removeUser(key: key)
                }
                mirror.unreadable = mirror.unreadable.filter { taken.seen.contains($0.key) }
            case .groups:
                for key in Array(mirror.model.groups.keys) where !taken.seen.contains(key) {
                    _ = mirror.model.removeGroup(key: key)
                }
            }
        }
        func remove(_ key: String) {
            switch kind {
            case .users:
                _ = mirror.model.removeUser(key: key)
                mirror.unreadable[key] = nil
            case .groups: _ = mirror.model.removeGroup(key: key)
            }
        }
        taken.messages += messages.count
        for message in messages {
            switch message.event {
            case .entry(let uuid, let entry):
                taken.seen.insert(uuid)
                switch kind {
                case .users:
                    // An entry that cannot be mapped leaves the person as the mirror holds them.
                    switch mapper.mapUser(entry, syncUUID: uuid) {
                    case .user(let user):
                        changedUsers.append(user)
                        mirror.unreadable[uuid] = nil
                    case .unreadable(let entry):
                        taken.unreadable.append(entry)
                        mirror.noteUnreadable(entry)
                    }
                case .groups:
                    mirror.model.upsertGroup(mapper.group(entry, syncUUID: uuid))
                }
            case .present(let uuid):
                taken.seen.insert(uuid)
            case .presentIDs(let uuids):
                taken.seen.formUnion(uuids)
            case .delete(let uuid):
                remove(uuid)
            case .deleteIDs(let uuids):
                uuids.forEach(remove)
            case .presentPhaseEnded:
                flush(&changedUsers)
                removeUnseen()
            case .refreshDone(let presentPhase):
                flush(&changedUsers)
                if presentPhase == nil {
                    logger.warning(
                        "the directory ended a syncrepl refresh with a Sync Info message Tether cannot read; nothing is taken as deleted for it, and the next complete read settles deletions",
                        metadata: ["ldap.search": "\(kind.rawValue)"])
                }
                if presentPhase == true || !taken.fromCookie { removeUnseen() }
            case .searchDone:
                break
            }
            if let cookie = message.cookie { taken.last = cookie }
        }
        flush(&changedUsers)
    }

    private func flush(_ users: inout [DirectoryUser]) {
        for user in users {
            rekeyIfNeeded(user)
            mirror.model.upsertUser(user)
        }
        users.removeAll()
    }

    /// Some servers name entries in syncrepl by another UUID than their entryUUID (389-DS
    /// derives it from nsUniqueId): a person a complete read loaded under one key and
    /// syncrepl names by another is moved to the new key, not counted twice.
    private func rekeyIfNeeded(_ user: DirectoryUser) {
        guard mirror.model.user(user.key) == nil,
            let previous = mirror.model.userKey(externalId: user.externalId), previous != user.key
        else { return }
        _ = mirror.model.removeUser(key: previous)
    }

    /// The persist stage: both searches polled side by side, their messages applied in the
    /// order they arrive, until a connection fails or the task is cancelled.
    private enum PersistItem: Sendable {
        case messages(DirectoryKind, [SyncMessage])
        case resync([ResyncRequests.Waiter])
        /// Time for the periodic complete read (`fullScanInterval`).
        case fullRead
    }

    private func persist(users: SyncReplSession, groups: SyncReplSession?) async throws {
        let (stream, continuation) = AsyncThrowingStream<PersistItem, any Error>.makeStream()
        let requests = service.resyncs
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (kind, session) in [(DirectoryKind.users, users)] + (groups.map { [(.groups, $0)] } ?? []) {
                group.addTask {
                    do {
                        while true {
                            try Task.checkCancellation()
                            continuation.yield(.messages(kind, try await session.poll()))
                        }
                    } catch {
                        continuation.finish(throwing: error)
                    }
                }
            }
            // A complete read every fullScanInterval, as in poll mode: it catches anything a
            // server's change stream can miss (a deletion keyed by an ID the mirror does not
            // know, an entry that moved in from outside the searched scope while Tether was down).
            let clock = service.clock
            let fullScanInterval = configuration.fullScanInterval
            group.addTask {
                while true {
                    try await clock.sleep(for: fullScanInterval)
                    continuation.yield(.fullRead)
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    await requests.waitForRequest()
                    let waiters = requests.take()
                    if !waiters.isEmpty { continuation.yield(.resync(waiters)) }
                }
            }
            var lastHeartbeat = service.wallClock.now()
            let heartbeat = Self.seconds(configuration.pollInterval)
            for try await item in stream {
                switch item {
                case .messages(let kind, let messages):
                    for message in messages { try await applyPersisted(message, kind: kind) }
                case .resync(let waiters):
                    await serveResyncs(waiters, cookie: cookie?.encoded)
                case .fullRead:
                    await serveResyncs([], cookie: cookie?.encoded)
                }
                if service.wallClock.now().timeIntervalSince(lastHeartbeat) >= heartbeat {
                    try await markHealthy()
                    lastHeartbeat = service.wallClock.now()
                }
            }
            group.cancelAll()
        }
        try Task.checkCancellation()
        throw LDAPError(.unreachable, "the syncrepl sessions with \(configuration.url) ended")
    }

    /// Applies one persist-stage message: the people it changes, then its cookie.
    func applyPersisted(_ message: SyncMessage, kind: DirectoryKind) async throws {
        try await loadMirror()
        var next = cookie ?? SyncCookie(search: searchFingerprint)
        if let fresh = message.cookie {
            switch kind {
            case .users: next.users = fresh
            case .groups: next.groups = fresh
            }
        }
        logger.debug("syncrepl message", metadata: ["ldap.search": "\(kind.rawValue)", "ldap.message": "\(message.event)"])
        let cookieData = message.cookie == nil ? nil : next.encoded
        let now = service.wallClock.now()
        let deletionVersion = message.cookie.flatMap(DirectoryVersion.fromCookie) ?? Timestamp.version(now)
        switchMessage: switch (kind, message.event) {
        case (.users, .entry(let uuid, let entry)):
            let user: DirectoryUser
            switch mapper.mapUser(entry, syncUUID: uuid) {
            case .user(let mapped):
                user = mapped
                mirror.unreadable[uuid] = nil
            case .unreadable(let unreadable):
                // Not a leaver: the person keeps the state the mirror holds for them.
                mirror.noteUnreadable(unreadable)
                warnUnreadable([unreadable])
                try await apply([], cookie: cookieData)
                break switchMessage
            }
            if let held = mirror.model.user(user.key), Self.isOlder(user.version, than: held.version) {
                try await skipOlder(entry.dn, held: held.version, cookie: cookieData)
                break
            }
            rekeyIfNeeded(user)
            let affected = mirror.model.upsertUser(user)
            try await apply(mirror.changedFacts(forUsers: affected, trigger: user.version, now: now), cookie: cookieData)
        case (.users, .delete(let uuid)):
            mirror.unreadable[uuid] = nil
            try await applyDeletion(key: uuid, cookie: cookieData, trigger: deletionVersion)
        case (.users, .deleteIDs(let uuids)):
            for (index, uuid) in uuids.enumerated() {
                mirror.unreadable[uuid] = nil
                try await applyDeletion(key: uuid, cookie: index == uuids.count - 1 ? cookieData : nil, trigger: deletionVersion)
            }
        case (.groups, .entry(let uuid, let entry)):
            let group = mapper.group(entry, syncUUID: uuid)
            if let held = mirror.model.groups[group.key], Self.isOlder(group.version, than: held.version) {
                try await skipOlder(entry.dn, held: held.version, cookie: cookieData)
                break
            }
            try await applyUnknownMembers(of: group, now: now)
            let affected = mirror.model.upsertGroup(group)
            try await apply(mirror.changedFacts(forUsers: affected, trigger: group.version, now: now), cookie: cookieData)
        case (.groups, .delete(let uuid)):
            let affected = mirror.model.removeGroup(key: uuid)
            try await apply(mirror.changedFacts(forUsers: affected, trigger: deletionVersion, now: now), cookie: cookieData)
        case (.groups, .deleteIDs(let uuids)):
            var affected: Set<String> = []
            for uuid in uuids { affected.formUnion(mirror.model.removeGroup(key: uuid)) }
            try await apply(mirror.changedFacts(forUsers: affected, trigger: deletionVersion, now: now), cookie: cookieData)
        default:
            // Present markers and refresh boundaries carry nothing in the persist stage.
            if cookieData != nil { try await apply([], cookie: cookieData) }
        }
        if message.cookie != nil { cookie = next }
        if kind == .users { try await reportUnreadable() }
    }

    /// Whether a persist message's entry is older than the state of the same entry the mirror
    /// already holds. Persist messages carry the entry as it was when it changed; a member
    /// lookup or a complete read may have brought a later state while they were on their way,
    /// and applying the older one would bring back, for a moment, a state the directory has
    /// left (a locked person's grants, a removed member's).
    static func isOlder(_ version: String, than held: String) -> Bool {
        !version.isEmpty && version < held
    }

    /// Keeps the later state the mirror holds and commits the message's cookie alone.
    private func skipOlder(_ dn: String, held: String, cookie: Data?) async throws {
        logger.debug("a syncrepl message older than the entry already read was skipped", metadata: ["ldap.dn": "\(dn)", "ldap.held": "\(held)"])
        try await apply([], cookie: cookie)
    }
}
