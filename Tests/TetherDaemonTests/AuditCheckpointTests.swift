import Crypto
import Foundation
import GRDB
import Logging
import Testing
import TetherCore
import TetherDaemon
import TetherStore
#if canImport(Glibc)
import Glibc
#endif

/// Signed audit checkpoints (docs/audit.md) end to end: the interval on an injected clock, the
/// real daemon signing and keeping them across restarts, the CLI checking a chain that was cut
/// off or rewritten against them, and the key kept out of every log.
@Suite struct AuditCheckpointDaemonTests {
    /// A fresh Ed25519 key made by openssl, as an operator makes one; returns its path.
    static func makeKey(in folder: URL, name: String = "audit.key", algorithm: String = "ed25519") async throws -> String {
        let path = folder.appendingPathComponent(name).path
        var arguments = ["genpkey", "-algorithm", algorithm, "-out", path]
        if algorithm == "rsa" { arguments += ["-pkeyopt", "rsa_keygen_bits:1024"] }
        let made = try await DaemonProcess.run(arguments, executable: "/usr/bin/openssl")
        guard made.code == 0 else { throw DaemonTestError("openssl genpkey failed: \(made.stderr)") }
        return path
    }

    static func openssl(_ arguments: [String]) async throws -> CommandResult {
        try await DaemonProcess.run(arguments, executable: "/usr/bin/openssl")
    }

    static func record(_ store: SQLiteStateStore, _ count: Int) async throws {
        var changeset = Changeset(time: Date())
        changeset.audit = (0..<count).map { _ in AuditEntry(action: .resyncRequested, actor: .operator("alice"), time: Date()) }
        _ = try await store.commit(changeset)
    }

    // MARK: - The interval, on an injected clock

    @Test func aCheckpointIsSignedOnlyAtTheEndOfAnIntervalInWhichRecordsWereAdded() async throws {
        let folder = try DaemonProcess.folder()
        let key = try AuditSigningKey.read(try await Self.makeKey(in: folder))
        let store = try SQLiteStateStore(path: folder.appendingPathComponent("tether.db").path)
        let start = Date(timeIntervalSince1970: 1_795_000_000)
        let clock = ManualWallClock(start)
        let lines = LogLines()
        let service = AuditCheckpointService(
            store: store, key: key, interval: .seconds(60), clock: clock, tick: .milliseconds(5),
            logger: Logger(label: "tether") { KeyValueLogHandler(label: $0, write: lines.append) })
        let running = Task { try await service.run() }
        defer { running.cancel() }
        func checkpoints() async throws -> [AuditCheckpoint] { try await store.auditCheckpoints(after: nil, limit: nil) }

        try await Self.record(store, 2)
        clock.advance(by: 59)
        clock.advance(by: 1)
        #expect(await eventually { service.intervalsEnded == 1 })
        let first = try await checkpoints()
        #expect(first.map(\.seq) == [2])
        #expect(first.first?.time == Timestamp.string(start + 60), "signed when the interval ended, by the injected clock")

        // An interval with nothing added signs nothing.
        clock.advance(by: 60)
        #expect(await eventually { service.intervalsEnded == 2 })
        #expect(try await checkpoints() == first)

        try await Self.record(store, 3)
        clock.advance(by: 60)
        #expect(await eventually { service.intervalsEnded == 3 })
        let second = try await checkpoints()
        #expect(second.map(\.seq) == [2, 5])
        #expect(try await store.verifyAuditChain(against: second, trusting: key.publicKey) == .intact(records: 5))
        #expect(lines.text.components(separatedBy: "audit checkpoint signed").count - 1 == 2, "\(lines.text)")
        #expect(lines.text.contains("seq=5") && lines.text.contains("key=\(key.publicKey.id)"), "\(lines.text)")
    }

    // MARK: - The daemon, the CLI and openssl

    static func config(key: String = "audit.key", interval: String = "1d", extra: String = "") -> String {
        """
        sources:
          hr: { secretFiles: [hr.secret] }
        \(DaemonProcess.supportCopilot)
        audit:
          signingKeyFile: \(key)
          checkpointInterval: \(interval)
        \(extra)
        """
    }

    /// SIGTERM, and the exit it must end in.
    static func stopGracefully(_ daemon: DaemonProcess) async throws {
        daemon.signal(SIGTERM)
        let status = await daemon.waitForExit(timeout: 20)
        #expect(status == 0, "\(daemon.log())")
    }

    @Test func theDaemonSignsKeepsAndVerifiesCheckpointsAcrossARestartAndOpenSSLAgrees() async throws {
        let folder = try DaemonProcess.folder(files: ["hr.secret": "hr-secret"])
        let keyPath = try await Self.makeKey(in: folder)
        let daemon = try DaemonProcess(config: Self.config(), folder: folder)
        defer { daemon.stop() }
        try await daemon.waitUntilReady()
        for (user, number) in [("jdoe", 1001), ("alice", 1002)] {
            #expect(try await daemon.postHR(HREventLines.event("join-\(user)", "joiner", user: user, employeeNumber: number)).status == 200)
        }
        // The interval is a day: the checkpoint comes from the graceful stop, over the last head.
        try await Self.stopGracefully(daemon)
        let firstHead = try await daemon.cli(["audit", "--json"]).stdout.split(separator: "\n").count
        let first = try await daemon.cli(["audit", "checkpoints", "--json"])
        #expect(first.code == 0)
        let firstLines = first.stdout.split(separator: "\n").map(String.init)
        #expect(firstLines.count == 1, "\(first.stdout)")
        #expect(try AuditCheckpoint(line: firstLines[0]).seq == firstHead)

        try daemon.launch()
        try await daemon.waitUntilReady()
        #expect(try await daemon.postHR(HREventLines.event("leave-alice", "leaver", user: "alice", employeeNumber: 1002)).status == 200)
        try await Self.stopGracefully(daemon)
        let second = try await daemon.cli(["audit", "checkpoints", "--json"])
        let secondLines = second.stdout.split(separator: "\n").map(String.init)
        #expect(secondLines.count == 2 && secondLines.first == firstLines[0], "kept across the restart: \(second.stdout)")
        let latest = try AuditCheckpoint(line: try #require(secondLines.last))
        #expect(latest.seq > firstHead)
        let table = try await daemon.cli(["audit", "checkpoints"])
        #expect(table.stdout.contains("SEQ") && table.stdout.contains(latest.hash), "\(table.stdout)")

        // Kept elsewhere, they check the chain: with the configured key, and with the public key alone.
        let kept = folder.appendingPathComponent("kept.jsonl").path
        try second.stdout.write(toFile: kept, atomically: true, encoding: .utf8)
        let verified = try await daemon.cli(["audit", "verify", "--checkpoints", kept])
        #expect(verified.code == 0, "\(verified.stdout)\(verified.stderr)")
        #expect(verified.stdout.contains("consistent with 2 checkpoints"), "\(verified.stdout)")
        let publicKey = try await daemon.cli(["audit", "key"])
        #expect(publicKey.code == 0)
        let openSSLPublic = try await Self.openssl(["pkey", "-in", keyPath, "-pubout"])
        #expect(publicKey.stdout == openSSLPublic.stdout, "the same PEM as openssl's")
        let publicPath = folder.appendingPathComponent("audit.pub").path
        try publicKey.stdout.write(toFile: publicPath, atomically: true, encoding: .utf8)
        let fromStdin = try await daemon.cli(["audit", "verify", "--checkpoints", "-", "--key", publicPath], input: Data(second.stdout.utf8))
        #expect(fromStdin.code == 0, "\(fromStdin.stdout)\(fromStdin.stderr)")
        // The key id is the SHA-256 of the public key's DER, as openssl and sha256sum print it.
        let der = try await Self.openssl(["pkey", "-pubin", "-in", publicPath, "-outform", "DER", "-out", publicPath + ".der"])
        #expect(der.code == 0)
        let digest = SHA256.hash(data: try Data(contentsOf: URL(fileURLWithPath: publicPath + ".der")))
        #expect(latest.key == "sha256:" + digest.map { String(format: "%02x", $0) }.joined())

        // An auditor with openssl alone: the documented bytes verify against the signature.
        let message = folder.appendingPathComponent("message").path
        let signature = folder.appendingPathComponent("signature").path
        try "tether-audit-checkpoint-v1\n\(latest.seq)\n\(latest.hash)\n\(latest.time)\n".write(toFile: message, atomically: true, encoding: .utf8)
        try Data(base64Encoded: latest.signature)!.write(to: URL(fileURLWithPath: signature))
        let openSSLVerify = try await Self.openssl(["pkeyutl", "-verify", "-pubin", "-inkey", publicPath, "-rawin", "-in", message, "-sigfile", signature])
        #expect(openSSLVerify.code == 0, "\(openSSLVerify.stdout)\(openSSLVerify.stderr)")

        // The key's content is in no log line; its id is.
        let log = daemon.log()
        #expect(log.contains("audit checkpoint signed") && log.contains(latest.key), "\(log)")
        let pem = try String(contentsOfFile: keyPath, encoding: .utf8)
        for line in pem.split(separator: "\n") where !line.hasPrefix("-----") {
            #expect(!log.contains(line), "the signing key is in the log")
        }
        #expect(!log.contains("PRIVATE KEY"))

        try await Self.tamperingIsFound(folder: folder, daemon: daemon, kept: kept, checkpoints: secondLines.map { try AuditCheckpoint(line: $0) })
    }

    /// Copies of the stopped daemon's store, cut off and rewritten, and a checkpoint of another key.
    static func tamperingIsFound(folder: URL, daemon: DaemonProcess, kept: String, checkpoints: [AuditCheckpoint]) async throws {
        let original = folder.appendingPathComponent("state/tether.db").path
        func copy(_ name: String) throws -> String {
            let path = folder.appendingPathComponent(name).path
            try DatabaseQueue(path: original).backup(to: DatabaseQueue(path: path))
            return path
        }
        let head = checkpoints.map(\.seq).max()!

        // The newest records cut off: the chain alone still verifies.
        let cut = try copy("cut.db")
        try await DatabaseQueue(path: cut).write { db in
            try db.execute(sql: "DROP TRIGGER audit_is_append_only_delete")
            try db.execute(sql: "DELETE FROM audit WHERE seq > ?", arguments: [head - 2])
        }
        #expect(try await daemon.cli(["audit", "verify", "--store", cut]).code == 0, "the chain alone cannot tell")
        let truncated = try await daemon.cli(["audit", "verify", "--store", cut, "--checkpoints", kept])
        #expect(truncated.code == 1)
        #expect(truncated.stdout.contains("broken at seq \(head)") && truncated.stdout.contains("cut off"), "\(truncated.stdout)")

        // Rewritten from seq 1 with fresh hashes: the first record changed, every hash recomputed.
        let rewritten = try copy("rewritten.db")
        try await DatabaseQueue(path: rewritten).write { db in
            let lines = try String.fetchAll(db, sql: "SELECT line FROM audit ORDER BY seq")
            try db.execute(sql: "DROP TRIGGER audit_is_append_only_delete; DELETE FROM audit")
            var prev = AuditRecord.genesis
            for (offset, line) in lines.enumerated() {
                var values = try JSONDecoder().decode([String: AuditValue].self, from: Data(line.utf8))
                values["hash"] = nil
                values["prev"] = .string(prev)
                if offset == 0 { values["actor"] = .string("operator:mallory") }
                let hash = SHA256.hash(data: Data((prev + "\n" + CanonicalJSON.object(values)).utf8)).map { String(format: "%02x", $0) }.joined()
                let record = AuditRecord(values: values, hash: hash)
                try db.execute(
                    sql: "INSERT INTO audit (seq, hash, prev, action, actor, time, line) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    arguments: [offset + 1, hash, prev, record.action, record["actor"], record["time"], record.line])
                prev = hash
            }
        }
        #expect(try await daemon.cli(["audit", "verify", "--store", rewritten]).code == 0, "the rewritten chain verifies internally")
        let disagreeing = try await daemon.cli(["audit", "verify", "--store", rewritten, "--checkpoints", kept])
        #expect(disagreeing.code == 1)
        let firstCheckpoint = checkpoints.map(\.seq).min()!
        #expect(disagreeing.stdout.contains("broken at seq \(firstCheckpoint)") && disagreeing.stdout.contains("rewritten"), "\(disagreeing.stdout)")

        // Another key: its checkpoint is refused by name, and so is every checkpoint under it.
        let other = try AuditSigningKey.read(try await makeKey(in: folder, name: "other.key"))
        let forged = other.checkpoint(seq: head, hash: checkpoints.last!.hash, time: Date())
        let forgedFile = folder.appendingPathComponent("forged.jsonl").path
        try (forged.line + "\n").write(toFile: forgedFile, atomically: true, encoding: .utf8)
        let refused = try await daemon.cli(["audit", "verify", "--checkpoints", forgedFile])
        #expect(refused.code == 1)
        #expect(refused.stdout.contains(other.publicKey.id) && refused.stdout.contains("refused"), "\(refused.stdout)")
        let otherPublic = folder.appendingPathComponent("other.pub").path
        try other.publicKey.pem.write(toFile: otherPublic, atomically: true, encoding: .utf8)
        let wrongTrust = try await daemon.cli(["audit", "verify", "--checkpoints", kept, "--key", otherPublic])
        #expect(wrongTrust.code == 1)
        #expect(wrongTrust.stdout.contains("broken at seq \(firstCheckpoint)") && wrongTrust.stdout.contains(checkpoints[0].key), "\(wrongTrust.stdout)")
    }

    @Test func aCheckpointFileThatCannotBeUsedIsExitTwoSayingWhereWithoutVerifyingAnything() async throws {
        let folder = try DaemonProcess.folder()
        _ = try await Self.makeKey(in: folder)
        let config = folder.appendingPathComponent("tether.yaml").path
        try "store: { sqlite: ./tether.db }\naudit: { signingKeyFile: audit.key }\n".write(toFile: config, atomically: true, encoding: .utf8)
        let store = try SQLiteStateStore(path: folder.appendingPathComponent("tether.db").path)
        try await Self.record(store, 2)
        let bad = folder.appendingPathComponent("bad.jsonl").path
        try "\n{\"seq\":1}\n".write(toFile: bad, atomically: true, encoding: .utf8)
        let malformed = try await DaemonProcess.run(["audit", "verify", "--config", config, "--checkpoints", bad])
        #expect(malformed.code == 2)
        #expect(malformed.stderr.contains("\(bad):2"), "\(malformed.stderr)")
        let missing = try await DaemonProcess.run(["audit", "verify", "--config", config, "--checkpoints", bad + ".none"])
        #expect(missing.code == 2 && missing.stderr.contains("cannot be read"), "\(missing.stderr)")
        let empty = try await DaemonProcess.run(["audit", "verify", "--config", config, "--checkpoints", "-"], input: Data())
        #expect(empty.code == 2 && empty.stderr.contains("no checkpoints"), "\(empty.stderr)")
        let noKey = try await DaemonProcess.run(
            ["audit", "verify", "--config", config, "--checkpoints", "-", "--key", folder.appendingPathComponent("none.pub").path],
            input: Data())
        #expect(noKey.code == 2 && noKey.stderr.contains("none.pub"), "\(noKey.stderr)")
    }

    // MARK: - Configuration

    @Test func checkConfigAndServeRefuseAKeyOrIntervalThatCannotBeUsedWhereItIsWritten() async throws {
        let folder = try DaemonProcess.folder(files: ["hr.secret": "hr-secret"])
        _ = try await Self.makeKey(in: folder, name: "rsa.key", algorithm: "rsa")
        let config = folder.appendingPathComponent("tether.yaml").path
        func checkConfig(_ audit: String) async throws -> CommandResult {
            try "store: { sqlite: ./state/tether.db }\naudit:\n\(audit)\n".write(toFile: config, atomically: true, encoding: .utf8)
            return try await DaemonProcess.run(["check-config", "--config", config])
        }
        let missing = try await checkConfig("  signingKeyFile: missing.key")
        #expect(missing.code == 2)
        #expect(missing.stdout.contains("tether.yaml:3:19: error: audit.signingKeyFile:"), "\(missing.stdout)")
        #expect(missing.stdout.contains(folder.appendingPathComponent("missing.key").path) && missing.stdout.contains("cannot be read"))

        let rsa = try await checkConfig("  signingKeyFile: rsa.key")
        #expect(rsa.code == 2)
        #expect(rsa.stdout.contains("audit.signingKeyFile:") && rsa.stdout.contains("holds an RSA key"), "\(rsa.stdout)")
        #expect(!rsa.stdout.contains("PRIVATE KEY"))
        // `serve` refuses it too, before it creates the store.
        let serve = try await DaemonProcess.run(["serve", "--config", config])
        #expect(serve.code == 2)
        #expect(serve.stderr.contains("holds an RSA key"), "\(serve.stderr)")
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("state").path))

        for interval in ["0s", "2d", "soon"] {
            _ = try await Self.makeKey(in: folder, name: "audit-\(interval).key")
            let bad = try await checkConfig("  signingKeyFile: audit-\(interval).key\n  checkpointInterval: \(interval)")
            #expect(bad.code == 2, "\(interval)")
            #expect(bad.stdout.contains("tether.yaml:4:23: error: audit.checkpointInterval:"), "\(bad.stdout)")
        }
        let target = try await checkConfig("  checkpointTarget: { url: http://127.0.0.1:1/checkpoints, secretFile: hr.secret }")
        #expect(target.code == 2 && target.stdout.contains("audit.checkpointTarget:"), "\(target.stdout)")

        _ = try await Self.makeKey(in: folder)
        let good = try await checkConfig("  signingKeyFile: audit.key\n  checkpointInterval: 5m")
        #expect(good.code == 0, "\(good.stdout)")
        #expect(good.stdout.contains("every 5m") && good.stdout.contains("sha256:"), "\(good.stdout)")
    }

    // MARK: - The checkpoint target

    @Test func checkpointsReachTheTargetInOrderOnceItRecoversWhileTheDaemonGoesOn() async throws {
        let target = RecordingTarget(secret: "checkpoint-secret")
        try await target.start()
        defer { Task { await target.stop() } }
        target.fail(.status500)
        let folder = try DaemonProcess.folder(files: ["hr.secret": "hr-secret", "checkpoints.secret": "checkpoint-secret"])
        _ = try await Self.makeKey(in: folder)
        let daemon = try DaemonProcess(
            config: Self.config(
                interval: "1s",
                extra: "  checkpointTarget: { url: \"\(target.checkpointURL)\", secretFile: checkpoints.secret, maxBackoff: 1s }"),
            folder: folder)
        defer { daemon.stop() }
        try await daemon.waitUntilReady()
        #expect(try await daemon.postHR(HREventLines.event("join-jdoe", "joiner", user: "jdoe", employeeNumber: 1001)).status == 200)
        #expect(await eventually { !target.refusedCheckpoints.isEmpty }, "\(daemon.log())")
        // The target is down, and the daemon goes on: another event, another checkpoint.
        #expect(try await daemon.postHR(HREventLines.event("join-alice", "joiner", user: "alice", employeeNumber: 1002)).status == 200)
        func stored() async throws -> [String] {
            try await daemon.cli(["audit", "checkpoints", "--json"]).stdout.split(separator: "\n").map(String.init)
        }
        #expect(try await eventually { try await stored().count >= 2 }, "\(daemon.log())")
        #expect(target.checkpoints.isEmpty)

        target.fail(nil)
        let all = try await stored()
        #expect(await eventually { target.checkpoints.count >= all.count }, "\(daemon.log())")
        let received = target.checkpoints
        #expect(received.prefix(all.count).map(\.body) == all, "every stored checkpoint, in order")
        #expect(received.allSatisfy { $0.signatureValid })
        let seqs = try all.map { try AuditCheckpoint(line: $0).seq }
        #expect(received.prefix(all.count).map(\.idempotencyKey) == seqs.map { "checkpoint:\($0)" })
        #expect(daemon.log().contains("checkpoint target unavailable"), "\(daemon.log())")
    }

    @Test func aCheckpointTargetThatHangsDoesNotHoldUpAGracefulStop() async throws {
        let target = RecordingTarget(secret: "checkpoint-secret")
        try await target.start()
        defer { Task { await target.stop() } }
        target.fail(.hang(.seconds(120)))
        let folder = try DaemonProcess.folder(files: ["hr.secret": "hr-secret", "checkpoints.secret": "checkpoint-secret"])
        _ = try await Self.makeKey(in: folder)
        let daemon = try DaemonProcess(
            config: Self.config(
                interval: "1s",
                extra: "  checkpointTarget: { url: \"\(target.checkpointURL)\", secretFile: checkpoints.secret, timeout: 60s }"),
            folder: folder)
        defer { daemon.stop() }
        try await daemon.waitUntilReady()
        #expect(try await daemon.postHR(HREventLines.event("join-jdoe", "joiner", user: "jdoe", employeeNumber: 1001)).status == 200)
        #expect(await eventually { !target.refusedCheckpoints.isEmpty }, "a checkpoint is in flight: \(daemon.log())")
        let asked = Date()
        daemon.signal(SIGTERM)
        let status = await daemon.waitForExit(timeout: 20)
        #expect(status == 0, "\(daemon.log())")
        #expect(Date().timeIntervalSince(asked) < 8, "the stop waited for the hanging target")
        // Not acknowledged, so still waiting: the stored checkpoints are all there for the next start.
        let stored = try await daemon.cli(["audit", "checkpoints", "--json"]).stdout.split(separator: "\n")
        #expect(!stored.isEmpty)
    }
}
