import Foundation
import SlapdHarness
import Testing
import TetherCore
import TetherStore
#if canImport(Glibc)
import Glibc
#endif

/// Unknown is not absent, in the running daemon (SPEC §3, §12): a directory that dies while
/// Tether follows it or reads it degrades the source and revokes nothing; once it is back,
/// Tether recovers and applies what changed meanwhile; a directory that lists nobody is held.
@Suite(.serialized) struct DirectoryFaultTests {
    static func people(_ count: Int, prefix: String = "l", groups: (Int) -> Set<String> = { _ in [] }) -> [Person] {
        (0..<count).map { index in
            Person(
                userName: "\(prefix)-\(index)", source: .ldap, number: 100_000 + index,
                department: SourcesWorld.departments[index % SourcesWorld.departments.count], groups: groups(index))
        }
    }

    static func grants(_ people: [Person]) -> Set<String> {
        ([SourcesWorld.sponsor] + people).reduce(into: Set<String>()) { $0.formUnion($1.grants) }
    }

    @Test func slapdKilledInThePersistPhaseThenChangedBeforeTetherReconnects() async throws {
        var people = Self.people(4) { [["support"], ["engineering"], ["support", "engineering"], []][$0] }
        let world = try await SourcesWorld(people: people)
        do {
            try await waitForGrants(world, Self.grants(people), "initial grants")
            // Changes now arrive through the persist phase: no complete read is due for 15 minutes.
            try await world.modifyDirectory("dn: cn=engineering,\(SourcesWorld.groups)\nchangetype: modify\nadd: member\nmember: \(SourcesWorld.dn("l-0"))\n")
            people[0].groups.insert("engineering")
            try await waitForGrants(world, Self.grants(people), "a change followed in the persist phase")
            let before = try await world.storedGrants()
            let changesBefore = world.target.changes.count

            await world.killDirectory()
            try await waitForDegraded(world)
            // The daemon retries while the server is down, and revokes nothing meanwhile.
            let retried = try await eventually(timeout: 30) { try await metric(world, "tether_ldap_reconnects_total") ?? 0 >= 2 }
            #expect(retried, "the daemon never retried")
            #expect(try await world.storedGrants() == before)
            #expect(try await world.auditActions("grant.revoked").isEmpty)
            #expect(try await world.store.identityCounts()[.terminated] ?? 0 == 0)
            #expect(world.target.changes.count == changesBefore, "nothing reached the target while the directory was down")

            // The server comes back and changes before Tether reconnects (the daemon is frozen
            // meanwhile): a leaver from a group, a lock, a department move. They can only reach
            // Tether through its resumed syncrepl refresh, and the restarted server has lost its
            // session log, so that refresh is a present phase.
            world.daemon.signal(SIGSTOP)
            try await world.slapd.restart()
            try await world.modifyDirectory("""
                dn: cn=engineering,\(SourcesWorld.groups)
                changetype: modify
                delete: member
                member: \(SourcesWorld.dn("l-1"))

                dn: \(SourcesWorld.dn("l-2"))
                changetype: modify
                replace: pwdAccountLockedTime
                pwdAccountLockedTime: 000001010000Z

                dn: \(SourcesWorld.dn("l-3"))
                changetype: modify
                replace: departmentNumber
                departmentNumber: Support

                """)
            people[1].groups.remove("engineering")
            people[2].status = .suspended
            people[3].department = "Support"
            world.daemon.signal(SIGCONT)
            #expect(try await eventually(timeout: 60) { try await !world.auditActions("source.recovered").isEmpty })
            try await waitForGrants(world, Self.grants(people), "the changes made while the daemon could not see them")
            #expect(try await world.ldapStatus()["state"] as? String == "ok")
            #expect(try await metric(world, "tether_source_degraded{source=\"ldap\"}") == 0)
            let locked = try await world.store.identity(userName: "l-2")
            #expect(locked?.status == .suspended, "\(String(describing: locked))")
            try await settled(world)
        } catch {
            await world.stop()
            throw error
        }
        await world.stop()
    }

    @Test func slapdKilledInTheMiddleOfTheDaemonsCompleteRead() async throws {
        // Enough people that the complete read a restarted daemon makes (its baseline before it
        // resumes from the cookie) takes 120 pages; slapd logs each page it serves.
        var people = Self.people(1_200)
        let pages = 1_200 / 10
        let world = try await SourcesWorld(people: people, pageSize: 10, slapd: Slapd.Options(debugLevel: 256))
        do {
            try await waitForGrants(world, Self.grants(people), "initial grants", timeout: 180)
            let before = try await world.storedGrants()
            world.daemon.signal(SIGKILL)
            _ = await world.daemon.waitForExit()
            let changesBefore = world.target.changes.count
            let mark = world.slapd.log.utf8.count

            try world.daemon.launch()
            let killAfter = Int.random(in: 3...pages / 2)
            let slapd = world.slapd
            let served = try await offPool { () -> Int in
                let deadline = Date().addingTimeInterval(120)
                while Date() < deadline {
                    let served = Self.pagesServed(slapd.log, after: mark)
                    if served >= killAfter {
                        slapd.kill()
                        return served
                    }
                    usleep(1_000)
                }
                return 0
            }
            try #require(served > 0, "the daemon never started its complete read")
            let total = Self.pagesServed(world.slapd.log, after: mark)
            #expect(total < pages, "slapd served \(total) of \(pages) pages: the read was complete before the kill")
            print("DirectoryFaultTests: slapd killed after serving \(total) of the \(pages) pages of the daemon's complete read")
            try await world.daemon.waitUntilReady()
            try await waitForDegraded(world)
            // The read never finished: its duration was never recorded in this process.
            #expect(try await metric(world, "tether_ldap_full_read_seconds_count") == 0)
            #expect(try await world.storedGrants() == before)
            #expect(try await world.auditActions("grant.revoked").isEmpty)
            #expect(try await world.store.identityCounts()[.terminated] ?? 0 == 0)
            #expect(world.target.changes.count == changesBefore)

            // The server comes back and a person is locked before Tether reconnects (frozen
            // meanwhile): the complete read it starts again brings the lock.
            world.daemon.signal(SIGSTOP)
            try await world.slapd.restart()
            try await world.modifyDirectory(
                "dn: \(SourcesWorld.dn("l-0"))\nchangetype: modify\nreplace: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n")
            people[0].status = .suspended
            world.daemon.signal(SIGCONT)
            #expect(try await eventually(timeout: 60) { try await !world.auditActions("source.recovered").isEmpty })
            try await waitForGrants(world, Self.grants(people), "the lock made before the daemon reconnected")
            #expect(try await world.store.identity(userName: "l-0")?.status == .suspended)
            #expect(try await world.auditActions("grant.revoked").count == people[0].withStatus(.active).grants.count)
            #expect(try await metric(world, "tether_ldap_full_read_seconds_count") ?? 0 >= 1)
            try await settled(world)
        } catch {
            await world.stop()
            throw error
        }
        await world.stop()
    }

    /// Full pages of 10 entries slapd's stats log shows it served after byte `mark` of its log.
    static func pagesServed(_ log: String, after mark: Int) -> Int {
        let tail = log.utf8.dropFirst(mark)
        return String(decoding: tail, as: UTF8.self).split(separator: "\n")
            .filter { $0.contains("SEARCH RESULT") && $0.contains("nentries=10") }.count
    }

    @Test func aDirectoryThatListsNobodyIsHeldUntilApproved() async throws {
        let people = Self.people(5) { $0 % 2 == 0 ? ["support"] : [] }
        let world = try await SourcesWorld(people: people)
        do {
            let everyone = Self.grants(people)
            try await waitForGrants(world, everyone, "initial grants")
            let before = try await world.storedGrants()
            // Every grant reached the target and was recorded as delivered: nothing is left in the
            // outbox to be sent (again) after the restart.
            let delivered = try await eventually(timeout: 30) {
                guard world.target.changes.count >= everyone.count else { return false }
                return try await world.store.outbox(target: nil).isEmpty
            }
            #expect(delivered, "the target received \(world.target.changes.count) of \(everyone.count) grants")

            // Everybody is deleted from the directory while the daemon is down.
            world.daemon.signal(SIGKILL)
            _ = await world.daemon.waitForExit()
            try await world.modifyDirectory((["jdoe"] + people.map(\.userName)).map { "dn: \(SourcesWorld.dn($0))\nchangetype: delete\n" }.joined(separator: "\n"))
            let changesBefore = world.target.changes.count
            try world.daemon.launch()
            try await world.daemon.waitUntilReady()

            var plans: [[String: Any]] = []
            let listed = try await eventually(timeout: 60) {
                plans = OperatorCLITests.json(try await world.daemon.cli(["plans", "--json"]).stdout) as? [[String: Any]] ?? []
                return !plans.isEmpty
            }
            #expect(listed, "no held plan; log: \(world.daemon.log().suffix(3_000))")
            let held = try #require(plans.first)
            #expect((held["reason"] as? String)?.contains("zero users") == true, "\(held)")
            let id = try #require(held["id"] as? String)
            #expect((try await world.status()["heldPlans"] as? [Any])?.count == 1)
            #expect(try await metric(world, "tether_held_plans") == 1)
            // Held: nothing revoked, nobody terminated, nothing sent to the target.
            #expect(try await world.storedGrants() == before)
            #expect(try await world.store.identityCounts()[.terminated] ?? 0 == 0)
            #expect(try await world.auditActions("grant.revoked").isEmpty)
            #expect(world.target.changes.count == changesBefore)

            let approved = try await world.daemon.cli(["approve", id])
            #expect(approved.code == 0, "\(approved.stdout) \(approved.stderr)")
            try await waitForGrants(world, [], "the approved plan applied")
            #expect(try await world.store.identityCounts()[.active] ?? 0 == 0)
            #expect(try await world.auditActions("grant.revoked").count == everyone.count)
            try await settled(world)
        } catch {
            await world.stop()
            throw error
        }
        await world.stop()
    }

    @Test func anEntryThatLosesItsExternalIdIsCountedAndItsPersonKept() async throws {
        let people = Self.people(2) { _ in ["support"] }
        let world = try await SourcesWorld(people: people, ldapMapping: "{ externalId: employeeNumber }")
        do {
            let everyone = Self.grants(people)
            try await waitForGrants(world, everyone, "initial grants")
            let unreadable = "tether_source_unreadable_entries{source=\"ldap\"}"
            try await world.modifyDirectory("dn: \(SourcesWorld.dn("l-0"))\nchangetype: modify\ndelete: employeeNumber\n")
            let counted = try await eventually(timeout: 60) {
                try await world.ldapStatus()["unreadableEntries"] as? Int == 1
            }
            #expect(counted, "tether status never counted the entry; log: \(world.daemon.log().suffix(3_000))")
            #expect(try await metric(world, unreadable) == 1)
            #expect(try await world.daemon.cli(["status"]).stdout.contains("UNREADABLE"))
            // A complete read keeps l-0 as they were.
            #expect(try await world.daemon.cli(["resync", "--full"]).code == 0)
            #expect(try await world.store.identity(userName: "l-0")?.status == .active)
            try await waitForGrants(world, everyone, "every grant kept")

            try await world.modifyDirectory("dn: \(SourcesWorld.dn("l-0"))\nchangetype: modify\nadd: employeeNumber\nemployeeNumber: 100000\n")
            let cleared = try await eventually(timeout: 60) {
                try await world.ldapStatus()["unreadableEntries"] as? Int == 0
            }
            #expect(cleared, "the count never went back to 0")
            #expect(try await metric(world, unreadable) == 0)
            #expect(try await world.auditActions("grant.revoked").isEmpty)
            try await settled(world)
        } catch {
            await world.stop()
            throw error
        }
        await world.stop()
    }

    // MARK: Helpers

    /// Waits until the store holds `expected` and the target holds what the store does.
    func waitForGrants(
        _ world: SourcesWorld, _ expected: Set<String>, _ what: String, timeout: TimeInterval = 60,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws {
        var stored: [String: String] = [:]
        let reached = try await eventually(timeout: timeout) {
            stored = try await world.storedGrants()
            return Set(stored.values) == expected && world.target.held == stored
        }
        guard reached else {
            let actual = Set(stored.values)
            Issue.record(
                "timed out waiting for \(what): missing \(expected.subtracting(actual).sorted()), unexpected \(actual.subtracting(expected).sorted()), target \(world.target.held.count) grants; log: \(world.daemon.log().suffix(3_000))",
                sourceLocation: sourceLocation)
            throw DaemonTestError("timed out waiting for \(what)")
        }
    }

    /// Waits until the LDAP source is degraded in `tether status`, the audit log and the metrics.
    func waitForDegraded(_ world: SourcesWorld, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let degraded = try await eventually(timeout: 60) {
            try await world.ldapStatus()["state"] as? String == "degraded"
        }
        #expect(degraded, "tether status never showed the LDAP source degraded", sourceLocation: sourceLocation)
        #expect(try await !world.auditActions("source.degraded").isEmpty, sourceLocation: sourceLocation)
        #expect(try await metric(world, "tether_source_degraded{source=\"ldap\"}") == 1, sourceLocation: sourceLocation)
    }

    /// Nothing planned, the chain intact, nothing redelivered as granted after a revocation.
    func settled(_ world: SourcesWorld, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        #expect(try await world.planSteps()?.isEmpty == true, sourceLocation: sourceLocation)
        #expect(try await world.daemon.cli(["audit", "verify"]).code == 0, sourceLocation: sourceLocation)
        #expect(world.deliveredAfterRevocation().isEmpty, sourceLocation: sourceLocation)
    }
}

/// A sample's value from the daemon's `/metrics`, by its name and labels as printed.
func metric(_ world: SourcesWorld, _ name: String) async throws -> Double? {
    let (_, text) = try await world.daemon.get("/metrics")
    for line in text.split(separator: "\n") where line.hasPrefix(name + " ") {
        return Double(line.dropFirst(name.count + 1))
    }
    return nil
}
