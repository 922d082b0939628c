import Foundation
import TetherCore
import TetherEngine

extension DirectorySession {
    /// Poll mode: a complete read now and every `fullScanInterval`, and between them an
    /// incremental search every `pollInterval` for entries changed since the last one
    /// (`modifyTimestamp`, or `uSNChanged` on Active Directory).
    ///
    /// Only a complete read, every page of it successful, may turn a missing entry into a
    /// leaver; an incremental search only adds and changes. On Active Directory each poll
    /// also reads the tombstones of objects deleted since the last one, and each person
    /// among them leaves (matched by `objectGUID`).
    func followByPolling(_ connection: LDAPConnection, dse: LDAPEntry) async throws {
        let usesUSN = USNWatermark.parse(dse.first("highestCommittedUSN")) != nil
        tombstoneContainer = nil
        if usesUSN {
            if configuration.mapping.externalId.lowercased() == "objectguid" {
                tombstoneContainer = deletedObjectsContainer(dse)
            } else {
                logger.info(
                    "deletions on Active Directory are matched by objectGUID; with another mapping.externalId they reach Tether only with the next complete read (fullScanInterval)",
                    metadata: ["ldap.externalId": "\(configuration.mapping.externalId)"])
            }
        }
        let pollInterval = Self.seconds(configuration.pollInterval)
        while true {
            let waiters = service.resyncs.take()
            var marker: PollMarker
            do {
                let (scanned, outcome) = try await fullScan(connection, usesUSN: usesUSN)
                marker = scanned
                for waiter in waiters { waiter.resume(returning: outcome) }
            } catch {
                for waiter in waiters { waiter.resume(throwing: error) }
                throw error
            }
            let nextFullScan = service.wallClock.now().addingTimeInterval(Self.seconds(configuration.fullScanInterval))
            while true {
                let untilFullScan = nextFullScan.timeIntervalSince(service.wallClock.now())
                if untilFullScan <= 0 { break }
                if pollInterval >= untilFullScan {
                    _ = try await sleepOrResync(.milliseconds(Int64((untilFullScan * 1000).rounded(.up))))
                    break
                }
                if try await sleepOrResync(configuration.pollInterval) { break }
                marker = try await poll(connection, since: marker)
                try await markHealthy()
            }
        }
    }

    /// Reads everything and applies it as one snapshot; returns where polling resumes and
    /// what the engine did.
    func fullScan(_ connection: LDAPConnection, usesUSN: Bool) async throws -> (PollMarker, ReconcileOutcome) {
        let usnBefore = usesUSN ? try await domainControllerState(connection) : nil
        let (model, unreadable) = try await readDirectory(connection)
        try await markHealthy()
        mirror.adopt(model, unreadable: unreadable)
        let outcome = try await applySnapshot(cookie: nil)
        if let usnBefore, let usn = USNWatermark.parse(usnBefore.usn) {
            return (.usn(USNWatermark(usn: usn, invocationId: usnBefore.invocationId)), outcome)
        }
        let stamps = mirror.model.allUsers.map(\.modifyTimestamp) + mirror.model.groups.values.map(\.modifyTimestamp)
        return (.timestamp(Self.newest(stamps, after: nil)), outcome)
    }

    /// One incremental search of groups and people; applies those whose facts changed, then
    /// (Active Directory) the deletions its tombstones show.
    ///
    /// - Throws: ``LDAPError`` `.staleResumePoint` when an Active Directory domain controller
    ///   is behind the USN watermark (restored from a backup): the source then reads
    ///   everything again.
    func poll(_ connection: LDAPConnection, since marker: PollMarker) async throws -> PollMarker {
        let condition: String
        var next = marker
        var tombstonesFrom: String?
        switch marker {
        case .timestamp(nil):
            return marker
        case .timestamp(let stamp?):
            condition = LDAPFilter.greaterOrEqual("modifyTimestamp", stamp)
        case .usn(let watermark):
            let observed = try await domainControllerState(connection)
            switch watermark.next(observedUSN: observed.usn, observedInvocationId: observed.invocationId) {
            case .poll(let from, let after):
                next = .usn(after)
                condition = LDAPFilter.greaterOrEqual("uSNChanged", from)
                tombstonesFrom = from
            case .completeRead(let reason):
                throw LDAPError(.staleResumePoint, "polling \(configuration.url) by update sequence number: \(reason)")
            }
        }
        var groups: [DirectoryGroup] = []
        if var request = mapper.groupsRequest {
            request.filter = LDAPFilter.and([request.filter, condition])
            groups = try await readAll(connection, request, search: "groups").map { mapper.group($0) }
        }
        var request = mapper.usersRequest
        request.filter = LDAPFilter.and([request.filter, condition])
        let users = mapUsers(try await readAll(connection, request, search: "users"))
        // Deleted since the same USN as the changes: read after them, so that whatever the
        // searches above missed because it was deleted in between is found here.
        var tombstones: [Tombstone] = []
        if let container = tombstoneContainer, let from = tombstonesFrom {
            if let found = try await readTombstones(connection, in: container, from: from) {
                tombstones = found
            } else {
                tombstoneContainer = nil
            }
        }

        // Every page succeeded: only now does the mirror change.
        try await loadMirror()
        var affected: Set<String> = []
        var trigger = ""
        for group in groups {
            affected.formUnion(mirror.model.upsertGroup(group))
            trigger = max(trigger, group.version)
        }
        for user in users { affected.formUnion(mirror.model.upsertUser(user)) }
        let changes = mirror.changedFacts(forUsers: affected, trigger: trigger, now: service.wallClock.now())
        try await apply(changes, cookie: nil)
        try await applyTombstones(tombstones)
        try await reportUnreadable()
        service.emit(.pollCompleted(changed: changes.count))
        if case .timestamp(let stamp) = marker {
            next = .timestamp(Self.newest(users.map(\.modifyTimestamp) + groups.map(\.modifyTimestamp), after: stamp))
        }
        return next
    }

    /// The domain controller's `highestCommittedUSN` (as the server wrote it) and the
    /// `invocationId` of its database (nil when the server names none or it cannot be read).
    private func domainControllerState(_ connection: LDAPConnection) async throws -> (usn: String?, invocationId: String?) {
        let dse = try await connection.rootDSE()
        let usn = dse.first("highestCommittedUSN")
        guard let settings = dse.first("dsServiceName"), !settings.isEmpty else { return (usn, nil) }
        let request = LDAPSearchRequest(
            base: settings, scope: .base, filter: "(objectClass=*)", attributes: ["invocationId"],
            binaryAttributes: ["invocationid"])
        do {
            var search = try await connection.startSearch(request, pageSize: nil)
            var entries: [LDAPEntry] = []
            while !search.isDone { entries += try await connection.nextPage(&search) }
            let bytes = entries.first?.binary["invocationid"]?.first
            return (usn, bytes.map { UUIDText.format($0, littleEndianFields: true) })
        } catch let error as LDAPError where error.code == .search {
            // Not readable by the bind account: the USN alone decides.
            return (usn, nil)
        }
    }

    /// The latest of `stamps` (GeneralizedTime, compared as times), or `after` if none is later.
    static func newest(_ stamps: [String?], after: String?) -> String? {
        var best = after
        var bestVersion = after.flatMap(DirectoryVersion.fromGeneralizedTime) ?? ""
        for case let stamp? in stamps {
            if let version = DirectoryVersion.fromGeneralizedTime(stamp), version > bestVersion {
                best = stamp
                bestVersion = version
            }
        }
        return best
    }

    static func seconds(_ duration: Duration) -> TimeInterval {
        let (seconds, attoseconds) = duration.components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }
}
