import Foundation
import PropertyInput
import SlapdHarness
import Synchronization
import Testing
import TetherCore
import TetherStore
#if canImport(Glibc)
import Glibc
#endif

/// `kill -9` of the daemon while every source writes at once and the target receives (SPEC §12):
/// LDAP joiners, movers and leavers through syncrepl, SCIM creates, patches and deletes, signed
/// HR joiners, movers and leavers, and outbox deliveries to an HTTP target. After each restart:
/// the grants equal the desired state and what the sources say, the audit chain verifies, every
/// outbox row committed before the kill reached the target, and no grant reached the target as
/// granted after its revocation.
@Suite(.serialized) struct MixedCrashRecoveryTests {
    /// Rounds in the suite; `TETHER_KILL_ROUNDS` raises it for a longer run.
    static let rounds = ProcessInfo.processInfo.environment["TETHER_KILL_ROUNDS"].flatMap(Int.init) ?? 30

    @Test func killNineWhileEverySourceWritesAndTheTargetReceives() async throws {
        var random = SystemRandomNumberGenerator()
        let initial = (0..<6).map { index in
            Person(
                userName: "l-init-\(index)", source: .ldap, number: 100_000 + index,
                department: SourcesWorld.departments.randomElement(using: &random)!,
                groups: Set(SourcesWorld.groupNames.filter { _ in Bool.random(using: &random) }))
        }
        // A complete read every 3 s: snapshots, full reconciliations and drift checks of the
        // target run among the changes, as they do in production every fullScanInterval.
        let world = try await SourcesWorld(people: initial, fullScanInterval: "3s", pageSize: 20)
        let run = CrashRun(world: world, people: [SourcesWorld.sponsor] + initial)
        do {
            try await run.caughtUp(round: -1, touched: Set(run.people.keys))
            for round in 0..<Self.rounds {
                guard try await run.round(round) else { break }
            }
        } catch {
            await world.stop()
            throw error
        }
        print("MixedCrashRecoveryTests: \(run.passed)/\(Self.rounds) rounds passed; \(run.statistics)")
        await world.stop()
        #expect(run.passed == Self.rounds)
    }
}

/// The state of a mixed crash run: the people as the test expects Tether to know them, the
/// audit records seen so far, and counters for the report.
final class CrashRun: @unchecked Sendable {
    let world: SourcesWorld
    var people: [String: Person]
    var passed = 0
    var auditSeen = 0
    var random = SystemRandomNumberGenerator()
    /// How the rounds went, for the summary line.
    var killedMidCommit = 0, killedMidDelivery = 0, killedAtRest = 0
    var rowsPendingAtKill = 0, redelivered = 0, unknownOutcomes = 0, changesWhileDown = 0

    init(world: SourcesWorld, people: [Person]) {
        self.world = world
        self.people = Dictionary(uniqueKeysWithValues: people.map { ($0.userName, $0) })
    }

    var statistics: String {
        "kills mid-commit \(killedMidCommit), mid-delivery \(killedMidDelivery), at rest \(killedAtRest); "
            + "outbox rows pending at a kill \(rowsPendingAtKill), redelivered \(redelivered); "
            + "requests in flight at a kill \(unknownOutcomes); LDAP changes made while down \(changesWhileDown)"
    }

    /// Where this round's kill lands.
    enum KillPoint {
        /// Once the audit log has grown by this many records: mid-commit as often as not.
        case auditGrowth(Int)
        /// Inside the target, after it applied the n-th change of the round and before it answers.
        case delivery(Int)
    }

    /// One round: changes from every source at once, `kill -9` at a random point, restart,
    /// catch up, check. Returns false when a check failed (the issue is recorded).
    func round(_ round: Int) async throws -> Bool {
        let daemon = world.daemon
        let pid = daemon.process.processIdentifier
        let startSeq = try await lastSeq()
        let changesBefore = world.target.changes.count
        let point: KillPoint = Bool.random(using: &random)
            ? .auditGrowth(Int.random(in: 1...20, using: &random)) : .delivery(Int.random(in: 1...8, using: &random))
        // Half the rounds the target is slow, so that changes queue up in the outbox and a
        // grant waits there next to its revocation when the kill comes.
        world.target.answer(after: .milliseconds([0, 0, 5, 20].randomElement(using: &random)!))
        let fired = Flag()
        if case .delivery(let n) = point {
            world.target.onChange { count in
                if count - changesBefore >= n, fired.set() { kill(pid, SIGKILL) }
            }
        }
        let done = Flag()
        let seeds = (0..<3).map { _ in UInt64.random(in: 0...UInt64.max, using: &random) }
        async let work = Self.work(round: round, people: people, world: world, seeds: seeds, done: done)

        // The kill.
        var atRest = false
        while !fired.isSet {
            if case .auditGrowth(let n) = point,
                try await !world.store.auditRecords(AuditQuery(afterSeq: startSeq + n - 1, limit: 1)).isEmpty,
                fired.set() {
                kill(pid, SIGKILL)
            } else if done.isSet, fired.set() {
                atRest = true
                kill(pid, SIGKILL)
            } else {
                try await Task.sleep(for: .milliseconds(2))
            }
        }
        let killTime = Date()
        _ = await daemon.waitForExit(timeout: 30)
        world.target.onChange(nil)
        world.target.answer(after: .zero)
        switch (point, atRest) {
        case (_, true): killedAtRest += 1
        case (.auditGrowth, _): killedMidCommit += 1
        case (.delivery, _): killedMidDelivery += 1
        }
        // Every row still in the outbox was committed before the kill and not yet acknowledged.
        let pendingAtKill = try await world.store.outbox(target: "gateway")
        rowsPendingAtKill += pendingAtKill.count

        let results = await work
        for result in results {
            if let failure = result.failure {
                Issue.record("round \(round): \(failure)")
                return false
            }
            for (name, person) in result.people { people[name] = person }
            changesWhileDown += result.ldapChangeTimes.filter { $0 > killTime }.count
        }

        try daemon.launch()
        try await daemon.waitUntilReady()
        // Requests in flight at the kill: applied in full or not at all, never half.
        for pending in results.compactMap(\.pending) {
            unknownOutcomes += 1
            guard try await resolve(pending, round: round) else { return false }
        }
        // Caught up: the grants, and each person changed this round known with the status and
        // department the sources gave (a locked person's changes move no grant).
        let touched = Set(results.flatMap { $0.people.keys } + results.compactMap { $0.pending?.after.userName })
        guard try await caughtUp(round: round, touched: touched) else { return false }

        // No grant lost or left over: plan is empty; the chain verifies.
        var ok = true
        let steps = try await world.planSteps()
        ok = ok && steps?.isEmpty == true
        #expect(steps?.isEmpty == true, "round \(round): grants differ from the desired state: \(steps ?? [])")
        let verify = try await daemon.cli(["audit", "verify"])
        #expect(verify.code == 0, "round \(round): \(verify.stdout) \(verify.stderr)")
        ok = ok && verify.code == 0

        // Every outbox row committed before the kill was delivered, or superseded by a later
        // revocation of the same grant that was.
        let changes = world.target.changes
        let delivered = Set(changes.compactMap(\.outboxID))
        let revoked = Dictionary(grouping: changes.filter { $0.operation == .delete }, by: \.grantID)
        for row in pendingAtKill where !delivered.contains(row.id) {
            let superseded = row.operation == .put && (revoked[row.grantID] ?? []).contains { ($0.outboxID ?? 0) > row.id }
            #expect(superseded, "round \(round): outbox row \(row.id) (\(row.operation) \(row.grantID)) never reached the target")
            ok = ok && superseded
        }
        var keys: Set<String> = []
        redelivered += changes[changesBefore...].filter { !keys.insert($0.idempotencyKey).inserted }.count
        let late = world.deliveredAfterRevocation()
        #expect(late.isEmpty, "round \(round): granted after its revocation: \(late)")
        let unsigned = changes.filter { !$0.signatureValid }
        #expect(unsigned.isEmpty, "round \(round): changes with a bad Tether-Signature: \(unsigned)")
        ok = ok && late.isEmpty && unsigned.isEmpty

        // Nothing needed repairing: a drift repair would mean the outbox had lost a change.
        let records = try await world.store.auditRecords(AuditQuery(afterSeq: auditSeen))
        auditSeen = records.last?.seq ?? auditSeen
        let repairs = records.filter { $0["reason"]?.hasPrefix("drift:") == true || $0.action == "plan.held" }
        #expect(repairs.isEmpty, "round \(round): \(repairs.map(\.line))")

        if !ok || !repairs.isEmpty {
            print(world.daemon.log().split(separator: "\n").suffix(40).joined(separator: "\n"))
            return false
        }
        passed += 1
        return true
    }

    /// The three sources' workers side by side; `done` is set when all have finished.
    static func work(round: Int, people: [String: Person], world: SourcesWorld, seeds: [UInt64], done: Flag) async -> [WorkerResult] {
        let client = PushClient(port: world.daemon.port)
        async let ldap = LDAPWorker(round: round, people: people, slapd: world.slapd, seed: seeds[0]).run()
        async let scim = SCIMWorker(round: round, people: people, client: client, seed: seeds[1]).run()
        async let hr = HRWorker(round: round, people: people, client: client, seed: seeds[2]).run()
        let results = await [ldap, scim, hr]
        _ = done.set()
        return results
    }

    func lastSeq() async throws -> Int {
        let records = try await world.store.auditRecords(AuditQuery(afterSeq: auditSeen))
        auditSeen = records.last?.seq ?? auditSeen
        return auditSeen
    }

    /// Settles a request whose answer the kill cut off: the store must show it applied in full
    /// (`after`) or not at all (`before`), and for SCIM the resource must agree with the identity.
    func resolve(_ pending: Pending, round: Int) async throws -> Bool {
        let name = pending.after.userName
        let identity = try await world.store.identity(userName: name)
        var resolved: Person?
        if pending.after.matches(identity) {
            resolved = pending.after
        } else if let before = pending.before, before.matches(identity) {
            resolved = before
        } else if pending.before == nil && identity == nil {
            people[name] = nil
            return true
        }
        guard var person = resolved else {
            Issue.record("round \(round): \(name) is \(identity.map { "\($0.status) \($0.department ?? "-")" } ?? "absent"), neither \(pending.before?.description ?? "absent") nor \(pending.after)")
            return false
        }
        if person.origin == .scim {
            let filter = "userName eq \"\(name)\"".addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
            let answer = try await PushClient(port: world.daemon.port).scim("GET", "/Users?filter=\(filter)")
            let resource = (answer.body["Resources"] as? [[String: Any]])?.first
            person.scimID = resource?["id"] as? String
            let consistent: Bool
            switch (resource?["active"] as? Bool, identity?.status) {
            case (true, .active), (false, .suspended), (nil, nil), (nil, .terminated): consistent = true
            default: consistent = false
            }
            guard consistent else {
                Issue.record("round \(round): SCIM resource \(String(describing: resource)) and identity \(String(describing: identity?.status)) of \(name) disagree")
                return false
            }
        }
        people[name] = person
        return true
    }

    /// Waits until the store's grants are what the people say, the `touched` people are known as
    /// the sources say, the outbox is empty and the target holds exactly the store's grants;
    /// records what differs when it never happens.
    @discardableResult
    func caughtUp(round: Int, touched: Set<String>) async throws -> Bool {
        let expected = people.values.reduce(into: Set<String>()) { $0.formUnion($1.grants) }
        var stored: [String: String] = [:]
        var outbox: [OutboxEntry] = []
        var unlike: [String] = []
        let settled = try await eventually(timeout: 60) {
            stored = try await world.storedGrants()
            outbox = try await world.store.outbox(target: "gateway")
            unlike = []
            for name in touched.sorted() {
                guard let person = people[name] else { continue }
                let identity = try await world.store.identity(userName: name)
                if !person.matches(identity) {
                    unlike.append("\(person) is \(identity.map { "\($0.status) \($0.department ?? "-")" } ?? "unknown") in the store; \(person.history)")
                }
            }
            return Set(stored.values) == expected && unlike.isEmpty && outbox.isEmpty && world.target.held == stored
        }
        guard settled else {
            let actual = Set(stored.values)
            let held = world.target.held
            Issue.record("""
                round \(round): never caught up
                missing from the store: \(expected.subtracting(actual).sorted())
                unexpected in the store: \(actual.subtracting(expected).sorted())
                people unlike the sources: \(unlike)
                outbox: \(outbox.map { "\($0.id) \($0.operation) \($0.grantID) attempts=\($0.attempts) \($0.lastError ?? "")" })
                target lacks: \(stored.filter { held[$0.key] == nil }.values.sorted())
                target has extra: \(held.filter { stored[$0.key] == nil }.values.sorted())
                log: \(world.daemon.log().split(separator: "\n").suffix(30).joined(separator: "\n"))
                """)
            return false
        }
        return true
    }
}

/// What one source's worker did in a round.
struct WorkerResult: Sendable {
    /// The people it changed, as they are after every acknowledged change.
    var people: [String: Person]
    /// The request the kill cut off, if any.
    var pending: Pending?
    /// A failure unrelated to the kill (slapd refused a change, an unexpected answer).
    var failure: String?
    /// When each LDAP change was made, to count those made while the daemon was down.
    var ldapChangeTimes: [Date] = []
}

/// A flag raised once, from any thread.
final class Flag: Sendable {
    private let value = Mutex(false)
    var isSet: Bool { value.withLock { $0 } }
    /// Raises the flag; true only for the caller that raised it.
    func set() -> Bool { value.withLock { old in defer { old = true }; return !old } }
}

/// A change whose answer never came: it may or may not have been applied.
struct Pending: Sendable {
    var before: Person?
    var after: Person
}

/// Changes the directory with ldapmodify: joiners, group movers, department movers, locks
/// and unlocks, deletions. slapd does not care whether the daemon is up: every change counts.
struct LDAPWorker {
    let round: Int
    var people: [String: Person]
    let slapd: Slapd
    var random: SeededRandom

    init(round: Int, people: [String: Person], slapd: Slapd, seed: UInt64) {
        self.round = round
        self.people = people.filter { $0.value.origin == .ldap }
        self.slapd = slapd
        random = SeededRandom(seed: seed)
    }

    consuming func run() async -> WorkerResult {
        var changed: [String: Person] = [:]
        var times: [Date] = []
        for index in 0..<Int.random(in: 4...7, using: &random) {
            let candidates = people.values.filter { $0.status != .terminated && $0.userName != "jdoe" }.sorted { $0.userName < $1.userName }
            let kind = candidates.isEmpty ? 0 : Int.random(in: 0..<10, using: &random)
            var ldif: String
            var person: Person
            switch kind {
            case 0...2:
                person = Person(
                    userName: "l-\(round)-\(index)", source: .ldap, number: 110_000 + round * 10 + index,
                    department: SourcesWorld.departments.randomElement(using: &random)!,
                    groups: Set(SourcesWorld.groupNames.filter { _ in Bool.random(using: &random) }))
                ldif = SourcesWorld.entry(person).replacingOccurrences(
                    of: "objectClass: inetOrgPerson", with: "changetype: add\nobjectClass: inetOrgPerson")
                for group in person.groups.sorted() {
                    ldif += "\ndn: cn=\(group),\(SourcesWorld.groups)\nchangetype: modify\nadd: member\nmember: \(SourcesWorld.dn(person.userName))\n"
                }
            case 3...5:
                person = candidates.randomElement(using: &random)!
                let group = SourcesWorld.groupNames.randomElement(using: &random)!
                let leaving = person.groups.contains(group)
                if leaving { person.groups.remove(group) } else { person.groups.insert(group) }
                ldif = "dn: cn=\(group),\(SourcesWorld.groups)\nchangetype: modify\n\(leaving ? "delete" : "add"): member\nmember: \(SourcesWorld.dn(person.userName))\n"
            case 6:
                person = candidates.randomElement(using: &random)!
                person.department = SourcesWorld.departments.filter { $0 != person.department }.randomElement(using: &random)!
                ldif = "dn: \(SourcesWorld.dn(person.userName))\nchangetype: modify\nreplace: departmentNumber\ndepartmentNumber: \(person.department)\n"
            case 7...8:
                person = candidates.randomElement(using: &random)!
                let locking = person.status == .active
                person.status = locking ? .suspended : .active
                ldif = "dn: \(SourcesWorld.dn(person.userName))\nchangetype: modify\n"
                    + (locking ? "replace: pwdAccountLockedTime\npwdAccountLockedTime: 000001010000Z\n" : "delete: pwdAccountLockedTime\n")
            default:
                person = candidates.randomElement(using: &random)!
                person.status = .terminated
                person.groups = []
                ldif = "dn: \(SourcesWorld.dn(person.userName))\nchangetype: delete\n"
            }
            do {
                let text = ldif
                let slapd = slapd
                try await offPool { try slapd.modify(text) }
            } catch {
                return WorkerResult(people: changed, failure: "ldapmodify failed: \(error)\n\(ldif)")
            }
            times.append(Date())
            person.history.append("round \(round): \(["join", "join", "join", "group", "group", "group", "department", "lock", "lock", "delete"][kind]) at \(times.last!.timeIntervalSince1970)")
            people[person.userName] = person
            changed[person.userName] = person
        }
        return WorkerResult(people: changed, ldapChangeTimes: times)
    }
}

/// Creates, patches and deletes SCIM users until the daemon stops answering.
struct SCIMWorker {
    let round: Int
    var people: [String: Person]
    let client: PushClient
    var random: SeededRandom

    init(round: Int, people: [String: Person], client: PushClient, seed: UInt64) {
        self.round = round
        self.people = people.filter { $0.value.origin == .scim }
        self.client = client
        random = SeededRandom(seed: seed)
    }

    consuming func run() async -> WorkerResult {
        var changed: [String: Person] = [:]
        for index in 0..<Int.random(in: 3...5, using: &random) {
            let candidates = people.values.filter { $0.status != .terminated && $0.scimID != nil }.sorted { $0.userName < $1.userName }
            let kind = candidates.isEmpty ? 0 : Int.random(in: 0..<10, using: &random)
            let before: Person?
            var after: Person
            let request: (method: String, path: String, body: [String: Any]?, success: Int)
            switch kind {
            case 0...3:
                before = nil
                after = Person(
                    userName: "s-\(round)-\(index)", source: .scim, number: 200_000 + round * 10 + index,
                    department: SourcesWorld.departments.randomElement(using: &random)!)
                request = ("POST", "/Users", PushClient.scimUser(after), 201)
            case 4...5:
                before = candidates.randomElement(using: &random)!
                after = before!
                after.status = after.status == .active ? .suspended : .active
                let patch = PushClient.patch([["op": "replace", "path": "active", "value": after.status == .active]])
                request = ("PATCH", "/Users/\(after.scimID!)", patch, 200)
            case 6...7:
                before = candidates.randomElement(using: &random)!
                after = before!
                after.department = SourcesWorld.departments.filter { $0 != after.department }.randomElement(using: &random)!
                let patch = PushClient.patch([["op": "replace", "path": "\(PushClient.enterprise):department", "value": after.department]])
                request = ("PATCH", "/Users/\(after.scimID!)", patch, 200)
            default:
                before = candidates.randomElement(using: &random)!
                after = before!
                after.status = .terminated
                request = ("DELETE", "/Users/\(after.scimID!)", nil, 204)
            }
            let answer: PushClient.Answer
            do {
                answer = try await client.scim(request.method, request.path, request.body)
            } catch {
                // The daemon is gone: this request may or may not have been applied.
                return WorkerResult(people: changed, pending: Pending(before: before, after: after))
            }
            guard answer.status == request.success else {
                if answer.status >= 500 { return WorkerResult(people: changed, pending: Pending(before: before, after: after)) }
                return WorkerResult(
                    people: changed, failure: "SCIM \(request.method) \(request.path) answered \(answer.status): \(String(decoding: answer.data, as: UTF8.self))")
            }
            if request.method == "POST" { after.scimID = answer.body["id"] as? String }
            people[after.userName] = after
            changed[after.userName] = after
        }
        return WorkerResult(people: changed)
    }
}

/// Sends signed HR joiners, movers and leavers until the daemon stops answering.
struct HRWorker {
    let round: Int
    var people: [String: Person]
    let client: PushClient
    var random: SeededRandom

    init(round: Int, people: [String: Person], client: PushClient, seed: UInt64) {
        self.round = round
        self.people = people.filter { $0.value.origin == .hr }
        self.client = client
        random = SeededRandom(seed: seed)
    }

    consuming func run() async -> WorkerResult {
        var changed: [String: Person] = [:]
        for index in 0..<Int.random(in: 3...5, using: &random) {
            let candidates = people.values.filter { $0.status == .active }.sorted { $0.userName < $1.userName }
            let kind = candidates.isEmpty ? 0 : Int.random(in: 0..<10, using: &random)
            let before: Person?
            var after: Person
            let type: String
            switch kind {
            case 0...3:
                before = nil
                after = Person(
                    userName: "h-\(round)-\(index)", source: .hr, number: 300_000 + round * 10 + index,
                    department: SourcesWorld.departments.randomElement(using: &random)!)
                type = "joiner"
            case 4...6:
                before = candidates.randomElement(using: &random)!
                after = before!
                after.department = SourcesWorld.departments.filter { $0 != after.department }.randomElement(using: &random)!
                type = "mover"
            default:
                before = candidates.randomElement(using: &random)!
                after = before!
                after.status = .terminated
                type = "leaver"
            }
            let line = HREventLines.event(
                "evt-\(round)-\(index)-\(type)", type, user: after.userName, employeeNumber: after.number,
                department: after.department)
            let answer: PushClient.Answer
            do {
                answer = try await client.hr(line)
            } catch {
                return WorkerResult(people: changed, pending: Pending(before: before, after: after))
            }
            guard answer.status == 200, answer.body["status"] as? String == "applied" else {
                if answer.status >= 500 { return WorkerResult(people: changed, pending: Pending(before: before, after: after)) }
                return WorkerResult(
                    people: changed, failure: "HR \(type) for \(after.userName) answered \(answer.status): \(String(decoding: answer.data, as: UTF8.self))")
            }
            people[after.userName] = after
            changed[after.userName] = after
        }
        return WorkerResult(people: changed)
    }
}
