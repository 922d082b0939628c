import Foundation
import Testing
import TetherDaemon
import TetherEngine
import TetherLDAP

/// Long work says how far it is: a complete directory read shows in `tether status --json`,
/// systemd's `STATUS=` and `/metrics` before it ends, and `tether resync --wait` draws a
/// progress bar on a terminal and prints plain lines when its output is not one. The daemon's
/// read is held at a page of people by a test hook, so the test sees it in its middle.
@Suite(.serialized) struct ProgressTests {
    /// 299 people and jdoe: 15 pages of 20 people. Polled, so that the first read is a paged
    /// one (a syncrepl refresh reports no pages).
    static func world(environment: [String: String] = [:]) async throws -> SourcesWorld {
        let people = (0..<299).map { number in
            Person(
                userName: "user\(number)", source: .ldap, number: 1000 + number,
                department: SourcesWorld.departments[number % SourcesWorld.departments.count],
                groups: number % 2 == 0 ? ["support"] : [])
        }
        return try await SourcesWorld(people: people, pageSize: 20, changeDetection: "poll", environment: environment)
    }

    /// The directory read in `tether status --json`'s progress, nil when none runs.
    static func progress(_ world: SourcesWorld) async throws -> [String: Any]? {
        (try await world.status()["progress"] as? [[String: Any]])?.first { $0["work"] as? String == "directory read" }
    }

    static func metric(_ world: SourcesWorld, _ sample: String) async throws -> Bool {
        try await world.daemon.get("/metrics").1.split(separator: "\n").contains { $0 == sample }
    }

    @Test func aLongReadShowsItsProgressBeforeItEnds() async throws {
        let world = try await Self.world(environment: ["TETHER_TEST_HOLD_READ_AT_PAGE": "2"])
        do {
            // Held after the second page of people.
            var progress: [String: Any]?
            #expect(try await eventually { progress = try await Self.progress(world); return progress?["done"] as? Int == 40 })
            #expect(progress?["work"] as? String == "directory read")
            #expect(progress?["phase"] as? String == "people")
            // slapd gives no estimate and no read came before this one: no total, no ETA.
            #expect(progress?["total"] == nil && progress?["etaSeconds"] == nil)
            #expect(await world.daemon.notify.wait(timeout: 10) { $0.hasPrefix("STATUS=") && $0.contains("directory read: people 40") } != nil)
            #expect(try await Self.metric(world, #"tether_work_in_progress{work="directory_read"} 1.0"#))
            #expect(try await Self.metric(world, #"tether_work_done{work="directory_read"} 40.0"#))

            // It advances: held again after the fifth page.
            try await SystemdLifecycleTests.adminPost(world.daemon, "/v1/debug/hold-read?page=5")
            #expect(try await eventually { try await Self.progress(world)?["done"] as? Int == 100 })
            #expect(await world.daemon.notify.wait(timeout: 10) { $0.hasPrefix("STATUS=") && $0.contains("directory read: people 100") } != nil)
            #expect(try await Self.metric(world, #"tether_work_done{work="directory_read"} 100.0"#))
            let human = try await world.daemon.cli(["status"])
            #expect(human.stdout.contains("in progress: directory read: people 100"), "\(human.stdout)")

            // Once released, the read ends: no progress, systemd's status is back to serving.
            world.daemon.notify.reset()
            try await SystemdLifecycleTests.adminPost(world.daemon, "/v1/debug/release-read")
            #expect(try await eventually { try await Self.progress(world) == nil })
            #expect(await world.daemon.notify.wait(timeout: 10) { $0 == "STATUS=serving" } != nil)
            #expect(try await Self.metric(world, #"tether_work_in_progress{work="directory_read"} 0.0"#))
            #expect(try await world.ldapStatus()["lastScanUsers"] as? Int == 300)
        } catch {
            await world.stop()
            throw error
        }
        await world.stop()
    }

    /// A full reconciliation's reports become its line in `tether status` and `STATUS=`.
    @Test func aFullReconciliationShowsIdentitiesPlannedThenItsCommit() {
        let progress = WorkProgress(notifier: SystemdNotifier(environment: [:]), previousPeople: nil)
        progress.begin("full reconciliation", phase: "reading the store")
        #expect(progress.current.map(\.line) == ["full reconciliation: reading the store"])
        progress.observe(ReconcileProgress.planning(done: 8_192, of: 100_000))
        #expect(progress.current.map(\.line) == ["full reconciliation: identities planned 8192 of 100000 (8%)"])
        #expect(progress.current.first?.totalSource == "identities")
        progress.observe(ReconcileProgress.committing(changes: 1_200))
        #expect(progress.current.map(\.line) == ["full reconciliation: committing 1200 changes"])
        progress.finish(work: "full reconciliation")
        #expect(progress.current.isEmpty)
    }

    /// A syncrepl refresh is not a paged read: it reports the entries received so far, of the
    /// last complete read's count, then that it is being applied.
    @Test func aSyncreplRefreshShowsThePeopleReceived() {
        let progress = WorkProgress(notifier: SystemdNotifier(environment: [:]), previousPeople: 4_000)
        progress.observe(LDAPSourceEvent.refreshProgress(search: "users", messages: 1_000, fromCookie: false))
        #expect(progress.current.map(\.line) == ["directory read: people (syncrepl refresh) 1000 of about 4000 (25%)"])
        progress.observe(LDAPSourceEvent.refreshProgress(search: "users", messages: 2_000, fromCookie: false))
        #expect(progress.current.first?.done == 2_000)
        progress.observe(LDAPSourceEvent.refreshProgress(search: "users", messages: 1_000, fromCookie: true))
        #expect(progress.current.map(\.line) == ["directory read: users changes (syncrepl refresh) 1000"])
        progress.observe(LDAPSourceEvent.refreshCompleted(search: "users", messages: 4_100, fromCookie: false))
        #expect(progress.current.map(\.line) == ["directory read: applying"])
        progress.observe(LDAPSourceEvent.snapshotApplied(users: 4_100, held: false))
        #expect(progress.current.isEmpty)
    }

    @Test func resyncDrawsABarOnATerminalAndPlainLinesWhenPiped() async throws {
        let world = try await Self.world()
        do {
            // The first read is done: the next one expects about as many people.
            #expect(try await eventually { try await world.ldapStatus()["lastScanUsers"] as? Int == 300 })

            // On a terminal (script runs the command in a pseudo terminal): a bar, redrawn in place.
            try await SystemdLifecycleTests.adminPost(world.daemon, "/v1/debug/hold-read?page=3")
            let command = ([DaemonProcess.binary.path, "resync", "--full", "--wait", "--config", world.daemon.configPath])
                .map { "'\($0)'" }.joined(separator: " ")
            let terminal = try BackgroundCommand("/usr/bin/script", ["-qfec", command, "/dev/null"], in: world.daemon.folder)
            #expect(await terminal.waitForOutput { $0.contains("directory read: people [") && $0.contains("60/300 20%") })
            try await SystemdLifecycleTests.adminPost(world.daemon, "/v1/debug/release-read")
            #expect(await terminal.wait() == 0)
            let drawn = terminal.output()
            #expect(drawn.contains("\r\u{1B}[2Kdirectory read: people [####....."), "\(drawn)")
            #expect(drawn.contains(": plan "), "\(drawn)")

            // Piped: plain lines on stderr, nothing drawn, stdout only the answer.
            try await SystemdLifecycleTests.adminPost(world.daemon, "/v1/debug/hold-read?page=3")
            let piped = try BackgroundCommand(
                DaemonProcess.binary.path, ["resync", "--full", "--wait", "--config", world.daemon.configPath], in: world.daemon.folder)
            #expect(await piped.waitForOutput(errors: true) { $0.contains("directory read: people 60 of about 300 (20%)") })
            try await SystemdLifecycleTests.adminPost(world.daemon, "/v1/debug/release-read")
            #expect(await piped.wait() == 0)
            let lines = piped.output(errors: true)
            #expect(!lines.contains("\u{1B}") && !lines.contains("\r") && !lines.contains("["), "\(lines)")
            #expect(!piped.output().contains("directory read"))
            #expect(piped.output().contains("plan"))
        } catch {
            await world.stop()
            throw error
        }
        await world.stop()
    }
}

/// A command left running while the test acts, its stdout and stderr written to files the
/// test reads as they grow.
final class BackgroundCommand: @unchecked Sendable {
    private let process: Process
    private let ended: ChildExit
    private let outPath: String
    private let errPath: String

    init(_ executable: String, _ arguments: [String], in folder: URL) throws {
        let name = UUID().uuidString.prefix(8)
        outPath = folder.appendingPathComponent("command-\(name).out").path
        errPath = folder.appendingPathComponent("command-\(name).err").path
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle(forWritingAtPath: outPath)
        process.standardError = FileHandle(forWritingAtPath: errPath)
        process.standardInput = FileHandle.nullDevice
        self.process = process
        ended = ChildExit(process)
        try process.run()
    }

    func output(errors: Bool = false) -> String {
        (try? String(contentsOfFile: errors ? errPath : outPath, encoding: .utf8)) ?? ""
    }

    /// Waits until the output (or errors) satisfy `predicate`; false at the deadline.
    func waitForOutput(errors: Bool = false, timeout: TimeInterval = 30, _ predicate: @escaping @Sendable (String) -> Bool) async -> Bool {
        await eventually(timeout: timeout) { predicate(self.output(errors: errors)) }
    }

    /// The exit status; nil when it has not ended by the deadline (it is killed then).
    func wait(timeout: TimeInterval = 60) async -> Int32? {
        guard let status = await ended.wait(timeout: .seconds(timeout)) else {
            process.terminate()
            return nil
        }
        return status
    }
}
