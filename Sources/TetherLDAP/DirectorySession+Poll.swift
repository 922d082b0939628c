import Foundation
import TetherCore
import TetherEngine

extension DirectorySession {
    /// Poll mode: a complete read now and every `fullScanInterval`, and between them an
    /// incremental search every `pollInterval` for entries changed since the last one
    /// (`modifyTimestamp`, or `uSNChanged` on Active Directory).
    ///
    /// Only a complete read, every page of it successful, may turn a missing entry into a
    /// leaver; an incremental search only adds and changes.
    func followByPolling(_ connection: LDAPConnection, dse: LDAPEntry) async throws {
        let usesUSN = dse.first("highestCommittedUSN").flatMap { Int64($0) } != nil
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
        let usnBefore = usesUSN ? try await highestCommittedUSN(connection) : nil
        var model = try await readDirectory(connection)
        try await markHealthy()
        model.carryRenames(since: mirror.model)
        mirror.model = model
        let outcome = try await applySnapshot(cookie: nil)
        if let usnBefore { return (.usn(usnBefore), outcome) }
        let stamps = model.allUsers.map(\.modifyTimestamp) + model.groups.values.map(\.modifyTimestamp)
        return (.timestamp(Self.newest(stamps, after: nil)), outcome)
    }

    /// One incremental search of groups and people; applies those whose facts changed.
    func poll(_ connection: LDAPConnection, since marker: PollMarker) async throws -> PollMarker {
        let condition: String
        var next = marker
        switch marker {
        case .timestamp(nil):
            return marker
        case .timestamp(let stamp?):
            condition = LDAPFilter.greaterOrEqual("modifyTimestamp", stamp)
        case .usn(let usn):
            next = .usn(try await highestCommittedUSN(connection) ?? usn)
            condition = LDAPFilter.greaterOrEqual("uSNChanged", String(usn + 1))
        }
        var groups: [DirectoryGroup] = []
        if var request = mapper.groupsRequest {
            request.filter = LDAPFilter.and([request.filter, condition])
            groups = try await readAll(connection, request, kind: .groups).map { mapper.group($0) }
        }
        var request = mapper.usersRequest
        request.filter = LDAPFilter.and([request.filter, condition])
        let users = mapUsers(try await readAll(connection, request, kind: .users))

        // Every page succeeded: only now does the mirror change.
        var affected: Set<String> = []
        var trigger = ""
        for group in groups {
            affected.formUnion(mirror.model.upsertGroup(group))
            trigger = max(trigger, group.version)
        }
        for user in users { affected.formUnion(mirror.model.upsertUser(user)) }
        let changes = mirror.changedFacts(forUsers: affected, trigger: trigger, now: service.wallClock.now())
        try await apply(changes, cookie: nil)
        service.emit(.pollCompleted(changed: changes.count))
        if case .timestamp(let stamp) = marker {
            next = .timestamp(Self.newest(users.map(\.modifyTimestamp) + groups.map(\.modifyTimestamp), after: stamp))
        }
        return next
    }

    private func highestCommittedUSN(_ connection: LDAPConnection) async throws -> Int64? {
        try await connection.rootDSE().first("highestCommittedUSN").flatMap { Int64($0) }
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
