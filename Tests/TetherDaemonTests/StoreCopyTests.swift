import Foundation
import PostgresHarness
import Testing

/// `tether store copy` (SPEC §14): a stopped deployment moved from SQLite to PostgreSQL and
/// back, answering as before, its audit chain verified on every copy.
@Suite(.serialized) struct StoreCopyTests {
    @Test func aDeploymentMovesToPostgresAndBackWithItsChainIntact() async throws {
        let folder = try DaemonProcess.folder(files: PostgresDaemonTests.secrets)
        let daemon = try DaemonProcess(config: PostgresDaemonTests.config, folder: folder)
        defer { daemon.stop() }
        try await daemon.waitUntilReady()
        for (user, number) in [("jdoe", 1001), ("alee", 1003), ("bkim", 1004)] {
            #expect(try await daemon.postHR(HREventLines.event("evt-join-\(user)", "joiner", user: user, employeeNumber: number)).status == 200)
        }
        #expect(try await daemon.postHR(HREventLines.event("evt-leave-alee", "leaver", user: "alee", employeeNumber: 1003)).status == 200)
        // Two exceptions, whose order the copy keeps.
        for subject in ["bkim", "jdoe"] {
            let made = try await daemon.cli([
                "exceptions", "deny", subject, "support-copilot", "tickets:read", "zendesk:queue/Support", "--reason", "audit hold \(subject)",
            ])
            #expect(made.code == 0, "\(made.output)")
        }
        let exceptions = try await daemon.cli(["exceptions", "--json"]).stdout
        let sqliteLines = try await daemon.cli(["audit", "list", "--json"]).stdout
        #expect(sqliteLines.split(separator: "\n").count >= 6)
        // A running daemon's store is not copied.
        let cluster = try await PostgresCluster.shared()
        let database = try await cluster.makeDatabase()
        let url = cluster.url(database: database)
        let sqlite = folder.appendingPathComponent("state/tether.db").path
        let refused = try await daemon.cli(["store", "copy", "--from", "sqlite:\(sqlite)", "--to", url])
        #expect(refused.code == 1)
        #expect(refused.stderr.contains("stop it"), "\(refused.output)")
        #expect(await daemon.stopAndWait())

        let copied = try await daemon.cli(["store", "copy", "--from", "sqlite:\(sqlite)", "--to", url])
        #expect(copied.code == 0, "\(copied.output)")
        #expect(copied.stdout.contains("the audit chain verifies on the copy"))
        // Not a terminal: plain progress lines on stderr, no bar redrawn in place.
        #expect(copied.stderr.contains("store copy: "), "\(copied.stderr)")
        #expect(!copied.stderr.contains("\u{1B}[2K"))
        // Into a store that is not empty: refused, nothing changed.
        let again = try await daemon.cli(["store", "copy", "--from", "sqlite:\(sqlite)", "--to", url])
        #expect(again.code == 1)
        #expect(again.stderr.contains("not empty"), "\(again.output)")

        // The daemon on the copy answers as it did, and keeps numbering the same chain.
        let onPostgres = try DaemonProcess(
            config: PostgresDaemonTests.config, folder: try DaemonProcess.folder(files: PostgresDaemonTests.secrets), store: "{ postgres: { url: \"\(url)\" } }")
        defer { onPostgres.stop() }
        try await onPostgres.waitUntilReady()
        #expect(try await onPostgres.check("alee") == "deny")
        #expect(try await onPostgres.cli(["exceptions", "--json"]).stdout == exceptions)
        #expect(try await onPostgres.cli(["audit", "list", "--json"]).stdout == sqliteLines)
        #expect(try await onPostgres.postHR(HREventLines.event("evt-join-cruz", "joiner", user: "cruz", employeeNumber: 1005)).status == 200)
        #expect(try await onPostgres.check("cruz") == "allow")
        let verified = try await onPostgres.cli(["audit", "verify"])
        #expect(verified.code == 0, "\(verified.output)")
        let postgresLines = try await onPostgres.cli(["audit", "list", "--json"]).stdout
        #expect(postgresLines.hasPrefix(sqliteLines) && postgresLines.count > sqliteLines.count)
        #expect(await onPostgres.stopAndWait())

        // And back into a new SQLite file.
        let back = folder.appendingPathComponent("back.db").path
        let returned = try await onPostgres.cli(["store", "copy", "--from", url, "--to", "sqlite:\(back)"])
        #expect(returned.code == 0, "\(returned.output)")
        let backVerified = try await onPostgres.cli(["audit", "verify", "--store", back])
        #expect(backVerified.code == 0, "\(backVerified.output)")
        #expect(try await onPostgres.cli(["audit", "list", "--json", "--store", back]).stdout == postgresLines)
        // On a terminal, the copy draws a bar with the rows copied of all.
        let drawnPath = folder.appendingPathComponent("drawn.db").path
        let command = [DaemonProcess.binary.path, "store", "copy", "--from", url, "--to", "sqlite:\(drawnPath)", "--config", onPostgres.configPath]
            .map { "'\($0)'" }.joined(separator: " ")
        let terminal = try BackgroundCommand("/usr/bin/script", ["-qfec", command, "/dev/null"], in: folder)
        #expect(await terminal.wait() == 0)
        let drawn = terminal.output()
        #expect(drawn.contains("\r\u{1B}[2Kstore copy: ") && drawn.contains("] "), "\(drawn)")
        #expect(drawn.contains("the audit chain verifies on the copy"))
        // A file that exists is not overwritten.
        let over = try await onPostgres.cli(["store", "copy", "--from", url, "--to", "sqlite:\(back)"])
        #expect(over.code == 1)
        #expect(over.stderr.contains("exists"), "\(over.output)")
    }
}
