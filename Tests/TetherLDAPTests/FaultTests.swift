import CLDAP
import Foundation
import Logging
import SlapdHarness
import TetherConfig
import TetherCore
import TetherLDAP
import TetherStore
import Testing

/// Fires once, when armed: lets a test act at one precise point of a scan.
final class Trigger: @unchecked Sendable {
    private let lock = NSLock()
    private var armed = false
    func arm() { lock.withLock { armed = true } }
    /// True the first time it is called after ``arm()``.
    func fire() -> Bool {
        lock.withLock {
            defer { armed = false }
            return armed
        }
    }
}

/// Unknown is not absent (SPEC §3, §12): an unreachable or failing directory degrades the
/// source and revokes nothing; a read that lists nobody is held for an operator.
@Suite("LDAP faults")
struct FaultTests {
    @Test("syncrepl: a restarted daemon resumes from its stored cookie without re-granting")
    func restartResumesFromCookie() async throws {
        let slapd = try await Slapd.start(ldif: Fixture.ldif)
        defer { slapd.destroy() }
        let world = try World(slapd: slapd, changeDetection: .syncrepl)
        // Each message taken into the mirror on its own, as it arrives: the phases of a
        // refresh from the cookie span many deliveries.
        world.tuning.refreshBatch = 1
        world.start()
        var grants = Fixture.initialGrants
        try await world.waitForGrants(grants, "initial grants")
        let grantedBefore = try await world.audit("grant.granted").count
        await world.stop()
        #expect(try await world.store.sourceState(.ldap)?.cookie != nil)

        // Changes while the daemon is down.
        try slapd.modify("""
            dn: cn=support,\(Fixture.groups)
            changetype: modify
            add: member
            member: uid=bob,ou=sales,\(Fixture.people)

            dn: uid=alice,ou=sales,\(Fixture.people)
            changetype: delete
            """)
        world.events.clear()
        try await world.restart()
        grants.insert("bob support-copilot tickets:read zendesk:queue/Success")
        grants.remove("alice support-copilot tickets:read zendesk:queue/Support")
        try await world.waitForGrants(grants, "changes made while stopped")
        #expect(try await world.identity("alice")?.status == .terminated)
        // Only the one new grant was granted: nothing was granted again.
        #expect(try await world.audit("grant.granted").count == grantedBefore + 1)
        let refreshes = world.events.all.compactMap { event -> (String, Int, Bool)? in
            if case .refreshCompleted(let search, let messages, let fromCookie) = event { return (search, messages, fromCookie) }
            return nil
        }
        let users = try #require(refreshes.first { $0.0 == "users" })
        #expect(users.2, "the users refresh resumed from the stored cookie")
        #expect(users.1 < 6, "the refresh sent only what changed, not all six people (\(users.1) messages)")
        await world.stop()
    }

    @Test("syncrepl: a refresh reports the messages received as they arrive, before it completes")
    func refreshReportsItsProgress() async throws {
        let slapd = try await Slapd.start(ldif: Fixture.ldif)
        defer { slapd.destroy() }
        let world = try World(slapd: slapd, changeDetection: .syncrepl)
        world.tuning.refreshProgressEvery = 2
        world.start()
        try await world.waitForGrants(Fixture.initialGrants, "initial grants")
        await world.stop()
        let users = world.events.all.compactMap { event -> (Int, Bool)? in
            switch event {
            case .refreshProgress("users", let messages, let fromCookie): (messages, fromCookie)
            case .refreshCompleted("users", let messages, _): (-messages, true)
            default: nil
            }
        }
        // 2, 4, 6 … as the six people arrive, then the end of the refresh with their count.
        let completed = try #require(users.firstIndex { $0.0 < 0 })
        let reports = users[..<completed].map(\.0)
        #expect(reports.count >= 3, "\(users)")
        #expect(reports == Array(stride(from: 2, through: reports.count * 2, by: 2)))
        #expect(users[..<completed].allSatisfy { !$0.1 }, "the first refresh reads the whole content")
        #expect(-users[completed].0 >= reports.last ?? 0)
    }

    @Test("syncrepl: slapd killed → degraded, nothing revoked, recovered after restart")
    func serverKilledWhileFollowing() async throws {
        let slapd = try await Slapd.start(ldif: Fixture.ldif)
        defer { slapd.destroy() }
        let world = try World(slapd: slapd, changeDetection: .syncrepl)
        world.start()
        var grants = Fixture.initialGrants
        try await world.waitForGrants(grants, "initial grants")

        slapd.kill()
        try await world.eventually("source.degraded audited") { try await !world.audit("source.degraded").isEmpty }
        #expect(try await world.store.sourceState(.ldap)?.health == .degraded)
        #expect(try await world.grants() == grants)
        #expect(try await world.store.identityCounts()[.terminated] ?? 0 == 0)

        try await slapd.restart()
        try await world.eventually("source.recovered audited") { try await !world.audit("source.recovered").isEmpty }
        #expect(try await world.store.sourceState(.ldap)?.health == .ok)
        try slapd.modify("""
            dn: cn=support,\(Fixture.groups)
            changetype: modify
            add: member
            member: uid=bob,ou=sales,\(Fixture.people)
            """)
        grants.insert("bob support-copilot tickets:read zendesk:queue/Success")
        try await world.waitForGrants(grants, "changes followed again after recovery")
        #expect(try await world.audit("grant.revoked").isEmpty)
        await world.stop()
    }

    @Test("poll: slapd killed in the middle of a full scan → degraded, nothing revoked, recovered")
    func serverKilledMidScan() async throws {
        let slapd = try await Slapd.start(ldif: Fixture.ldif, options: Slapd.Options(syncprov: false))
        defer { slapd.destroy() }
        // One entry a page: the reader fetches at most a page or two ahead, so most of the
        // scan is still to come when slapd dies.
        let world = try World(slapd: slapd, changeDetection: .poll, pageSize: 1)
        world.configuration.pollInterval = .seconds(3600)
        world.configuration.fullScanInterval = .milliseconds(300)
        let trigger = Trigger()
        world.tuning.afterPage = { search, page in
            if search == "users", page == 1, trigger.fire() { slapd.kill() }
        }
        world.start()
        let grants = Fixture.initialGrants
        try await world.waitForGrants(grants, "initial grants")
        trigger.arm()

        try await world.eventually("source.degraded audited") { try await !world.audit("source.degraded").isEmpty }
        #expect(try await world.grants() == grants)
        #expect(try await world.audit("grant.revoked").isEmpty)
        #expect(try await world.store.identityCounts()[.terminated] ?? 0 == 0)
        #expect(try await world.store.plans(status: .held).isEmpty)

        try await slapd.restart()
        try await world.eventually("source.recovered audited") { try await !world.audit("source.recovered").isEmpty }
        #expect(try await world.grants() == grants)
        #expect(try await world.audit("grant.revoked").isEmpty)
        await world.stop()
    }

    @Test("a users base that returns nothing produces a held plan", arguments: [LDAPChangeDetection.syncrepl, .poll])
    func emptyBaseIsHeld(detection: LDAPChangeDetection) async throws {
        let slapd = try await Slapd.start(ldif: Fixture.ldif, options: Slapd.Options(syncprov: detection == .syncrepl))
        defer { slapd.destroy() }
        let world = try World(slapd: slapd, changeDetection: detection)
        world.start()
        let grants = Fixture.initialGrants
        try await world.waitForGrants(grants, "initial grants")

        await world.stop()
        world.configuration.users = LDAPUsersConfiguration(base: "ou=empty,dc=example,dc=com")
        try await world.restart()
        try await world.eventually("a held plan") { try await !world.store.plans(status: .held).isEmpty }
        let held = try #require(try await world.store.plans(status: .held).first)
        #expect(held.plan.held?.contains("zero users") == true)
        #expect(try await world.grants() == grants)
        #expect(try await world.store.identityCounts()[.terminated] ?? 0 == 0)
        #expect(try await !world.audit("plan.held").isEmpty)
        await world.stop()
    }

    @Test("a users base that does not exist degrades the source")
    func missingBaseDegrades() async throws {
        let slapd = try await Slapd.start(ldif: Fixture.ldif, options: Slapd.Options(syncprov: false))
        defer { slapd.destroy() }
        let world = try World(slapd: slapd, changeDetection: .poll)
        world.start()
        try await world.waitForGrants(Fixture.initialGrants, "initial grants")
        await world.stop()
        world.configuration.users = LDAPUsersConfiguration(base: "ou=nowhere,dc=example,dc=com")
        try await world.restart()
        try await world.eventually("source.degraded audited") { try await !world.audit("source.degraded").isEmpty }
        let reason = try await world.audit("source.degraded").first?["reason"] ?? ""
        #expect(reason.contains("No such object (32)") && reason.contains("matched DN: dc=example,dc=com"))
        #expect(try await world.grants() == Fixture.initialGrants)
        await world.stop()
    }

    @Test("a refused bind degrades the source and keeps every grant")
    func refusedBind() async throws {
        let slapd = try await Slapd.start(ldif: Fixture.ldif, options: Slapd.Options(syncprov: false))
        defer { slapd.destroy() }
        let world = try World(slapd: slapd, changeDetection: .poll)
        world.start()
        try await world.waitForGrants(Fixture.initialGrants, "initial grants")
        await world.stop()
        try "wrong\n".write(toFile: try #require(world.configuration.bindPasswordFile), atomically: true, encoding: .utf8)
        try await world.restart()
        try await world.eventually("source.degraded audited") { try await !world.audit("source.degraded").isEmpty }
        let reason = try await world.audit("source.degraded").first?["reason"] ?? ""
        #expect(reason.contains("Invalid credentials (49)"))
        #expect(!reason.contains("wrong"), "the password never appears in messages")
        #expect(try await world.grants() == Fixture.initialGrants)
        await world.stop()
    }

    @Test("an empty bind password file is refused by its path; a CRLF-terminated one binds")
    func emptyBindPasswordFile() async throws {
        let slapd = try await Slapd.start(ldif: Fixture.ldif, options: Slapd.Options(syncprov: false))
        defer { slapd.destroy() }
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("tether-bind-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("ldap.password").path
        func connection() -> LDAPConnection {
            LDAPConnection(
                options: LDAPConnectionOptions(url: slapd.url, bindDN: Slapd.rootDN, bindPasswordFile: path, timeout: .seconds(5)),
                logger: Logger(label: "test"))
        }
        // Not an unauthenticated bind with an empty password: refused before the server is asked.
        for content in ["", "\n", " \r\n"] {
            try content.write(toFile: path, atomically: true, encoding: .utf8)
            let error = await #expect(throws: LDAPError.self) { try await connection().open() }
            #expect(error?.code == .bind)
            #expect(error?.description.contains("\(path) is empty") == true, "\(String(describing: error))")
        }
        try "\(Slapd.rootPassword)\r\n".write(toFile: path, atomically: true, encoding: .utf8)
        let bound = connection()
        try await bound.open()
        await bound.close()
    }

    @Test("a referral is not followed: the source is degraded")
    func referralDegrades() async throws {
        let port = try freePort()
        let slapd = try await Slapd.start(
            ldif: Fixture.ldif, options: Slapd.Options(syncprov: false, referral: "ldap://127.0.0.1:\(port)/"))
        defer { slapd.destroy() }
        let connection = LDAPConnection(options: LDAPConnectionOptions(url: slapd.url), logger: Logger(label: "test"))
        try await connection.open()
        var search = try await connection.startSearch(
            LDAPSearchRequest(base: "ou=people,dc=elsewhere,dc=org", filter: "(objectClass=*)", attributes: ["cn"]),
            pageSize: 10)
        let error = await #expect(throws: LDAPError.self) { _ = try await connection.nextPage(&search) }
        #expect(error?.code == .referral)
        #expect(error?.referrals.first?.hasPrefix("ldap://127.0.0.1:\(port)") == true)
        await connection.close()
    }

    @Test("an unreachable server and a frozen one fail with the right codes")
    func unreachableAndTimeout() async throws {
        let closed = LDAPConnection(
            options: LDAPConnectionOptions(url: "ldap://127.0.0.1:\(try freePort())/", timeout: .seconds(2)),
            logger: Logger(label: "test"))
        let refused = await #expect(throws: LDAPError.self) { try await closed.open() }
        #expect(refused?.code == .unreachable)

        let slapd = try await Slapd.start(ldif: Fixture.ldif, options: Slapd.Options(syncprov: false))
        defer { slapd.destroy() }
        let connection = LDAPConnection(
            options: LDAPConnectionOptions(url: slapd.url, timeout: .seconds(1)), logger: Logger(label: "test"))
        try await connection.open()
        slapd.pause()
        defer { slapd.resume() }
        var search = try await connection.startSearch(
            LDAPSearchRequest(base: Fixture.people, filter: "(objectClass=*)", attributes: ["cn"]), pageSize: 10)
        // Without a timeout the page would wait for the frozen server for ever; thaw it after a
        // generous while so that a missing timeout fails as an answer instead of hanging the run.
        let thaw = Task {
            try await Task.sleep(for: .seconds(30))
            slapd.resume()
        }
        defer { thaw.cancel() }
        let started = ContinuousClock.now
        let timedOut = await #expect(throws: LDAPError.self) { _ = try await connection.nextPage(&search) }
        #expect(timedOut?.code == .timeout)
        // The limit is waited for, not cut short (the upper bound is the thaw: a loaded machine may
        // take seconds to schedule the waiting thread).
        #expect(ContinuousClock.now - started >= .seconds(1))
        await connection.close()
    }
}

@Suite("LDAP resync on request")
struct ResyncTests {
    @Test("resync reads everything again now, in either mode", arguments: [LDAPChangeDetection.syncrepl, .poll])
    func resync(detection: LDAPChangeDetection) async throws {
        let slapd = try await Slapd.start(ldif: Fixture.ldif, options: Slapd.Options(syncprov: detection == .syncrepl))
        defer { slapd.destroy() }
        let world = try World(slapd: slapd, changeDetection: detection)
        // Nothing but a resync may notice changes during this test.
        world.configuration.pollInterval = .seconds(3600)
        world.configuration.fullScanInterval = .seconds(3600)
        world.start()
        var grants = Fixture.initialGrants
        try await world.waitForGrants(grants, "initial grants")
        let service = try #require(world.service)

        if detection == .poll {
            try slapd.modify("""
                dn: cn=support,\(Fixture.groups)
                changetype: modify
                add: member
                member: uid=bob,ou=sales,\(Fixture.people)
                """)
            grants.insert("bob support-copilot tickets:read zendesk:queue/Success")
        }
        let outcome = try await service.resync()
        guard case .applied(let plan) = outcome else {
            Issue.record("expected an applied plan, got \(outcome)")
            return
        }
        #expect(plan.grants == (detection == .poll ? 1 : 0))
        #expect(try await world.grants() == grants)
        await world.stop()
    }

    @Test("resync while the directory is unreachable fails at once and changes nothing")
    func resyncWhileDown() async throws {
        let slapd = try await Slapd.start(ldif: Fixture.ldif, options: Slapd.Options(syncprov: false))
        defer { slapd.destroy() }
        let world = try World(slapd: slapd, changeDetection: .poll)
        world.start()
        try await world.waitForGrants(Fixture.initialGrants, "initial grants")
        slapd.kill()
        try await world.eventually("source.degraded audited") { try await !world.audit("source.degraded").isEmpty }
        let service = try #require(world.service)
        let error = await #expect(throws: LDAPError.self) { _ = try await service.resync() }
        #expect(error?.code == .unreachable)
        #expect(try await world.grants() == Fixture.initialGrants)
        await world.stop()
    }
}
