import Foundation
import PostgresHarness
import SlapdHarness
import Synchronization
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `kill -9` of the leader of three daemons, round after round, while HR joiners and leavers
/// and SCIM creates keep arriving at every node and people are added to and deleted from the
/// directory the leader follows by syncrepl (SPEC §14). After the rounds: every write that was
/// acknowledged is in the store once, no acknowledged leaver keeps a grant, every directory
/// change is taken in (each new leader resumed the directory where the last one stopped), the
/// audit chain is one intact chain across leaders, and each failover took at most a lease and
/// a renewal (and some slack for a loaded machine).
@Suite(.serialized) struct HAFailoverLoopTests {
    /// Rounds in the suite; `TETHER_HA_ROUNDS` raises it (`scripts/ha-kill-loop`).
    static let rounds = ProcessInfo.processInfo.environment["TETHER_HA_ROUNDS"].flatMap(Int.init) ?? 3

    /// What the writers sent and were told.
    final class Ledger: Sendable {
        struct State {
            var joined: [String] = []
            var left: [String] = []
            var scim: [String] = []
            var directoryAdded: [String] = []
            var directoryDeleted: [String] = []
            var refused = 0
        }
        let state = Mutex(State())
        /// The nodes writes may go to: the one being killed and restarted is left out.
        let live: Mutex<Set<Int>>
        let stopped = Mutex(false)

        init(nodes: Int) { live = Mutex(Set(0..<nodes)) }

        var stopping: Bool { stopped.withLock { $0 } }

        /// Counts a refused write; the sender waits a moment before the next, as a client that
        /// got 503 with Retry-After would (a load generator's pace, not a synchronisation).
        func refused() async {
            state.withLock { $0.refused += 1 }
            try? await Task.sleep(for: .milliseconds(20))
        }
        func target() -> Int? { live.withLock { $0.randomElement() } }
    }

    /// The nodes' configuration: HA's, with the directory followed by syncrepl.
    static func config(node: String, directory: Slapd) -> String {
        HATests.config(node: node, scim: true).replacingOccurrences(of: "sources:\n", with: """
            sources:
              ldap:
                url: \(directory.url)
                bindDN: "\(Slapd.rootDN)"
                bindPasswordFile: ldap.password
                users: { base: "\(SourcesWorld.people)" }
                groups: { base: "\(SourcesWorld.groups)" }
                changeDetection: syncrepl
                timeout: 10s

            """)
    }

    @Test func theLeaderKilledRoundAfterRoundLosesNothingAcknowledged() async throws {
        let directory = try await Slapd.start(ldif: SourcesWorld.ldif(people: [SourcesWorld.sponsor]))
        defer { directory.destroy() }
        let files = PostgresDaemonTests.secrets.merging(["scim.token": "scim-token-ha", "ldap.password": Slapd.rootPassword]) { $1 }
        let postgres = try await PostgresCluster.shared()
        let database = try await postgres.makeDatabase()
        let store = "{ postgres: { url: \"\(postgres.url(database: database))\" } }"
        var nodes: [DaemonProcess] = []
        for index in 1...3 {
            nodes.append(try DaemonProcess(
                config: Self.config(node: "k\(index)", directory: directory), folder: try DaemonProcess.folder(files: files), store: store))
        }
        defer { for node in nodes { node.stop() } }
        for node in nodes { try await node.waitUntilReady() }
        let cluster = HATests.Cluster(nodes: nodes, database: database)
        #expect(try await eventually { try await cluster.leader() != nil })
        #expect(try await nodes[0].postHR(HREventLines.event("evt-join-jdoe", "joiner", user: "jdoe", employeeNumber: 1)).status == 200)

        // Writers: one HR, one SCIM, each to a node at random, and one changing the directory,
        // until told to stop.
        let ledger = Ledger(nodes: nodes.count)
        let writing = nodes
        let writers = Task {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    var number = 1_000
                    while !ledger.stopping {
                        number += 1
                        let user = "hr\(number)"
                        guard let target = ledger.target() else { continue }
                        let joined = try? await writing[target].postHR(HREventLines.event("evt-join-\(user)", "joiner", user: user, employeeNumber: number))
                        if joined?.status == 200 { ledger.state.withLock { $0.joined.append(user) } } else { await ledger.refused() }
                        guard joined?.status == 200, number % 3 == 0 else { continue }
                        let left = try? await writing[target].postHR(HREventLines.event("evt-leave-\(user)", "leaver", user: user, employeeNumber: number))
                        if left?.status == 200 { ledger.state.withLock { $0.left.append(user) } } else { await ledger.refused() }
                    }
                }
                group.addTask {
                    var number = 0
                    while !ledger.stopping {
                        number += 1
                        guard let target = ledger.target() else { continue }
                        let user = #"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"scim\#(number)","active":true}"#
                        let created = try? await writing[target].postSCIM(user)
                        if created?.status == 201 { ledger.state.withLock { $0.scim.append("scim\(number)") } } else { await ledger.refused() }
                    }
                }
                group.addTask {
                    var number = 5_000
                    while !ledger.stopping {
                        number += 1
                        let person = Person(userName: "ldap\(number)", source: .ldap, number: number, department: "Support", groups: [])
                        guard (try? await offPool { try directory.add(SourcesWorld.entry(person)) }) != nil else { continue }
                        ledger.state.withLock { $0.directoryAdded.append(person.userName) }
                        if number % 3 == 0 {
                            let deletion = "dn: \(SourcesWorld.dn(person.userName))\nchangetype: delete\n"
                            if (try? await offPool { try directory.modify(deletion) }) != nil {
                                ledger.state.withLock { $0.directoryDeleted.append(person.userName) }
                            }
                        }
                        // A directory's pace of change, not a synchronisation.
                        try? await Task.sleep(for: .milliseconds(50))
                    }
                }
            }
        }

        var failovers: [TimeInterval] = []
        for round in 0..<Self.rounds {
            // The node that leads now (a restarted node may take a moment to say so).
            var leader: Int?
            _ = try await eventually(timeout: 20) {
                leader = try await cluster.leader()
                return leader != nil
            }
            guard let leader else {
                Issue.record("no node leads before round \(round)")
                break
            }
            let others = nodes.indices.filter { $0 != leader }
            let killedAt = Date()
            ledger.live.withLock { _ = $0.remove(leader) }
            _ = await nodes[leader].stopAndWait()
            var next: Int?
            _ = try await eventually(timeout: 20) {
                next = try await cluster.leader(among: others)
                return next != nil
            }
            guard let next else {
                Issue.record("no node took over in round \(round)")
                break
            }
            // The node that took over may lose the lease again before its status is read (a
            // renewal late on a loaded machine): the failover ends when a leader says since when.
            var failover = try await cluster.failover(to: next, after: killedAt)
            if failover == nil {
                _ = try await eventually(timeout: 20) {
                    guard let current = try await cluster.leader(among: others) else { return false }
                    failover = try await cluster.failover(to: current, after: killedAt)
                    return failover != nil
                }
            }
            failovers.append(try #require(failover, "round \(round): no leader said since when it led"))
            try nodes[leader].launch()
            try await nodes[leader].waitUntilReady()
            ledger.live.withLock { _ = $0.insert(leader) }
        }
        ledger.stopped.withLock { $0 = true }
        await writers.value

        // Every acknowledged write is in the store, once; no acknowledged leaver keeps a grant.
        let written = ledger.state.withLock { $0 }
        func count(_ sql: String) async throws -> Int {
            Int(try await postgres.psql(sql, database: database).trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        }
        let joinedIDs = written.joined.map { "'evt-join-\($0)'" }.joined(separator: ",")
        if !written.joined.isEmpty {
            #expect(try await count("SELECT count(*) FROM events WHERE id IN (\(joinedIDs))") == written.joined.count)
        }
        if !written.left.isEmpty {
            let leavers = written.left.map { "'\($0)'" }.joined(separator: ",")
            #expect(try await count("SELECT count(*) FROM grants WHERE subject IN (\(leavers))") == 0)
            #expect(try await count("SELECT count(*) FROM identities WHERE userName IN (\(leavers)) AND status = 'terminated'") == written.left.count)
        }
        if !written.scim.isEmpty {
            let names = written.scim.map { "'\($0)'" }.joined(separator: ",")
            #expect(try await count("SELECT count(*) FROM scim_resources WHERE userName IN (\(names))") == written.scim.count)
        }
        #expect(try await count("SELECT count(*) FROM (SELECT id FROM events GROUP BY id HAVING count(*) > 1) twice") == 0)
        // Every directory change is taken in by whichever node leads now: the people still in
        // the directory are active with their grant, those deleted are gone with theirs.
        let present = Set(written.directoryAdded).subtracting(written.directoryDeleted).map { "'\($0)'" }.joined(separator: ",")
        let deleted = written.directoryDeleted.map { "'\($0)'" }.joined(separator: ",")
        let directoryCaughtUp = try await eventually(timeout: 30) {
            let active = present.isEmpty ? 0 : try await count("SELECT count(DISTINCT subject) FROM grants WHERE subject IN (\(present))")
            let lingering = deleted.isEmpty ? 0 : try await count("SELECT count(*) FROM grants WHERE subject IN (\(deleted))")
            return active == written.directoryAdded.count - written.directoryDeleted.count && lingering == 0
        }
        #expect(directoryCaughtUp, "directory: \(written.directoryAdded.count) added, \(written.directoryDeleted.count) deleted")
        if !deleted.isEmpty {
            // A deletion's group changes can revoke the grants before the entry's own deletion
            // is taken in; the identity is then terminated a moment later.
            var kept = ""
            let terminated = try await eventually(timeout: 30) {
                kept = try await postgres.psql(
                    "SELECT userName || ' ' || status || ' ' || data FROM identities WHERE userName IN (\(deleted)) AND status <> 'terminated'",
                    database: database)
                return kept.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
            }
            #expect(terminated, "deleted from the directory, not terminated: \(kept)")
        }
        let survivor = try #require(try await cluster.leader())
        let verified = try await nodes[survivor].cli(["audit", "verify"])
        #expect(verified.code == 0, "\(verified.output)")
        let seconds = failovers.sorted()
        print(
            "HAFailoverLoopTests: \(failovers.count)/\(Self.rounds) rounds; failover min \(seconds.first ?? 0) s, "
                + "median \(seconds.isEmpty ? 0 : seconds[seconds.count / 2]) s, max \(seconds.last ?? 0) s; acknowledged: "
                + "\(written.joined.count) joiners, \(written.left.count) leavers, \(written.scim.count) SCIM users, "
                + "\(written.directoryAdded.count) directory adds, \(written.directoryDeleted.count) deletes; "
                + "\(written.refused) writes refused (503 while no leader, retried by the sender)")
        #expect(failovers.count == Self.rounds)
        // A lease (1 s) and a renewal (200 ms): about a second here. The bound is SPEC §13's
        // 15 s, not a multiple of that second: a test machine loaded by the other suites has
        // taken over 5 s in a round.
        #expect(
            seconds.allSatisfy { $0 > 0 && $0 < 15 },
            "failovers took \(failovers) s, round by round, from the kill to the new leader's lease")
        #expect(written.joined.count > 0 && written.scim.count > 0 && written.directoryAdded.count > 0 && written.directoryDeleted.count > 0)
    }
}
