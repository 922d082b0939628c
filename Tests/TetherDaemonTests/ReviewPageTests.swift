import Foundation
import Testing
import SlapdHarness
import Synchronization
import TetherCore

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Access reviews end to end (SPEC §18): a campaign started with the CLI over the demo-like
/// company, decisions made in headless Chromium through a reviewer's link, refusals of what
/// may not pass, the defaults at the due date on an injected clock, the resulting revocations
/// and deny exceptions, and a report whose every line matches the audit log.
@Suite(.serialized) struct ReviewPageTests {
    /// support-copilot is sponsored by jdoe, notes-bot by dave; both serve Support.
    static let config = """
        lifecycle: { precedence: [hr, scim, ldap] }
        sources:
          hr: { secretFiles: [hr.secret] }
        agents:
          - { id: support-copilot, kind: delegated, sponsor: jdoe }
          - { id: notes-bot, kind: delegated, sponsor: dave }
        safety: { maxRevocationsPerRun: 100, maxRevocationRatio: 1.0, minGrantsForRatio: 1000 }
        reviews: { unusedAfter: 30d }
        policies:
          - id: support-tickets
            when: { attribute: { name: department, in: [Support] } }
            grant:
              - { agent: support-copilot, scopes: [tickets:read], resource: "zendesk:queue/{department}" }
              - { agent: notes-bot, scopes: [notes:write], resource: "notion:space/{department}" }
        """
    static let staff = [("jdoe", 1001), ("alice", 1002), ("bob", 1003), ("carol", 1004), ("dave", 1005)]

    static func json(_ text: String) -> Any? { try? JSONSerialization.jsonObject(with: Data(text.utf8)) }

    /// The path of a link (`/review/<token>`).
    static func path(of url: String) throws -> String {
        let components = try #require(URLComponents(string: url))
        #expect(components.path.hasPrefix("/review/"))
        return components.path
    }

    /// The demo: `config/tether.yaml` over the sample company in `scripts/demo-data/company.ldif`,
    /// served by a real slapd, with the gateway target recording what it receives.
    static func demoConfiguration(folder: URL, slapd: Slapd, target: RecordingTarget) throws -> String {
        let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return try String(contentsOf: repository.appendingPathComponent("config/tether.yaml"), encoding: .utf8)
            .replacingOccurrences(of: "../.tether-demo/", with: folder.path + "/")
            .replacingOccurrences(of: "ldap://127.0.0.1:3389", with: slapd.url)
            .replacingOccurrences(of: "127.0.0.1:8080", with: "127.0.0.1:0")
            .replacingOccurrences(of: "http://127.0.0.1:9400/grants", with: target.url)
    }

    static var company: String {
        get throws {
            let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent()
            return try String(contentsOf: repository.appendingPathComponent("scripts/demo-data/company.ldif"), encoding: .utf8)
        }
    }

    @Test func reviewersDecideInABrowserAndTheDueDateAppliesTheRest() async throws {
        let slapd = try await Slapd.start(ldif: try Self.company)
        defer { slapd.stop() }
        let target = RecordingTarget(secret: "gateway-secret")
        try await target.start()
        defer { Task { await target.stop() } }
        let folder = try DaemonProcess.folder(files: [
            "hr.secret": "hr-secret", "gateway.secret": "gateway-secret", "check.token": "check-token", "scim.token": "scim-token",
            "ldap.password": Slapd.rootPassword,
        ])
        _ = try await AuditCheckpointDaemonTests.makeKey(in: folder)
        let clock = ManualWallClock(Date())
        let config = try Self.demoConfiguration(folder: folder, slapd: slapd, target: target)
        try await InProcessDaemon.run(config: config, folder: folder, engineClock: clock, complete: false) { daemon in
            // The first directory read gives the company its grants.
            let attempt = Mutex(CommandResult(code: -1, stdout: "", stderr: "not tried"))
            let ready = await eventually(timeout: 60) {
                let result =
                    (try? await daemon.cli([
                        "reviews", "start", "--name", "Q4 agent access", "--scope", "all", "--reviewer", "sponsor", "--due", "14d",
                        "--if-no-answer", "revoke", "--json",
                    ])) ?? CommandResult(code: -1, stdout: "", stderr: "the CLI did not run")
                attempt.withLock { $0 = result }
                return result.code == 0
            }
            let started = attempt.withLock { $0 }
            #expect(ready, "\(started.stderr)")
            let result = try #require(Self.json(started.stdout) as? [String: Any])
            let campaign = try #require(result["campaign"] as? [String: Any])
            let id = try #require(campaign["id"] as? String)
            #expect(campaign["unassigned"] as? Int == 0)

            let shown = try #require(Self.json(try await daemon.cli(["reviews", "show", id, "--json"]).stdout) as? [String: Any])
            let items = try #require(shown["items"] as? [[String: Any]])
            #expect(items.count == campaign["items"] as? Int)
            func number(_ subject: String, _ agent: String) throws -> Int {
                try #require(items.first { $0["subject"] as? String == subject && $0["agent"] as? String == agent }?["number"] as? Int)
            }
            func reviewers(_ item: [String: Any]) -> [String] { item["reviewers"] as? [String] ?? [] }
            // jdoe's own access is his manager's to review, not his.
            #expect(items.first { $0["subject"] as? String == "jdoe" }.map(reviewers) == ["boss"])
            let aliceCopilot = try number("alice", "support-copilot")
            let bobCopilot = try number("bob", "support-copilot")
            let jdoeItems = items.count { reviewers($0).contains("jdoe") }

            let links = try #require(Self.json(try await daemon.cli(["reviews", "links", id, "--json"]).stdout) as? [String: Any])
            let rows = try #require(links["links"] as? [[String: Any]])
            #expect(rows.map { $0["reviewer"] as? String } == ["boss", "jdoe", "mkhan"])
            func link(_ reviewer: String) throws -> String {
                try Self.path(of: try #require(rows.first { $0["reviewer"] as? String == reviewer }?["url"] as? String))
            }
            let jdoeLink = try link("jdoe")
            let mkhanLink = try link("mkhan")
            #expect(rows.first { $0["reviewer"] as? String == "jdoe" }?["items"] as? Int == jdoeItems)

            // jdoe decides two items in a real browser, by keyboard, and sees them decided after a reload.
            let browser = try await DaemonProcess.run(
                [Self.script, "http://127.0.0.1:\(daemon.port)\(jdoeLink)", "{\"\(aliceCopilot)\": \"keep\", \"\(bobCopilot)\": \"revoke\"}"],
                executable: "/usr/bin/python3")
            #expect(browser.code == 0, "\(browser.stderr)")
            let page = try #require(Self.json(browser.stdout) as? [String: Any])
            let decided = try #require(page["decided"] as? [String: Any])
            #expect(decided["\(aliceCopilot)"] as? String == "keep")
            #expect(decided["\(bobCopilot)"] as? String == "revoke")
            #expect(decided.count == jdoeItems)
            #expect(decided.values.count { $0 is NSNull } == jdoeItems - 2)
            #expect(page["scripts"] as? Int == 0)
            #expect((page["title"] as? String)?.hasPrefix("Q4 agent access") == true)

            let listed = (Self.json(try await daemon.cli(["reviews", "--json"]).stdout) as? [[String: Any]])?.first
            #expect(listed?["decided"] as? Int == 2 && listed?["items"] as? Int == items.count && listed?["unassigned"] as? Int == 0)

            // The decisions are on record at once, by the reviewer.
            let audit = try await daemon.cli(["audit", "--subject", "bob", "--json"]).stdout
            #expect(audit.contains(#""action":"review.decided""#))
            #expect(audit.contains(#""actor":"reviewer:jdoe""#))

            // What may not pass gets 403: a forged token, another reviewer's item, a form
            // without its token, a form from a browser without the page's cookie.
            let client = PageClient(port: daemon.port)
            let forged = String(jdoeLink.dropLast(2)) + (jdoeLink.hasSuffix("AA") ? "BB" : "AA")
            #expect(try await client.send("GET", forged).status == 403)
            #expect(try await client.send("GET", "/review/not-a-token").status == 403)
            let mkhanPage = try await client.send("GET", mkhanLink)
            #expect(mkhanPage.status == 200)
            let mkhanCookie = try #require(mkhanPage.cookie)
            let mkhanForm = try #require(PageClient.csrf(in: mkhanPage.body))
            let other = try await client.send(
                "POST", mkhanLink, form: ["csrf": mkhanForm, "item": "\(aliceCopilot)", "decision": "revoke"], cookie: mkhanCookie)
            #expect(other.status == 403)
            #expect(other.body.contains("Not your item"))
            let frankAnalyst = try number("frank", "finance-analyst")
            let noToken = try await client.send("POST", mkhanLink, form: ["item": "\(frankAnalyst)", "decision": "revoke"], cookie: mkhanCookie)
            #expect(noToken.status == 403)
            let noCookie = try await client.send("POST", mkhanLink, form: ["csrf": mkhanForm, "item": "\(frankAnalyst)", "decision": "revoke"])
            #expect(noCookie.status == 403)
            // jdoe's form token does not work with mkhan's link.
            let jdoePage = try await client.send("GET", jdoeLink)
            let jdoeForm = try #require(PageClient.csrf(in: jdoePage.body))
            #expect(try await client.send(
                "POST", mkhanLink, form: ["csrf": jdoeForm, "item": "\(frankAnalyst)", "decision": "keep"], cookie: mkhanCookie).status == 403)
            // With both, mkhan's decision goes through: 303 back to the page.
            let kept = try await client.send(
                "POST", mkhanLink, form: ["csrf": mkhanForm, "item": "\(frankAnalyst)", "decision": "keep", "note": "uses it daily"],
                cookie: mkhanCookie)
            #expect(kept.status == 303)
            #expect(kept.location?.hasPrefix(mkhanLink) == true)
            #expect(mkhanPage.headers["Cache-Control"] == "no-store")
            #expect(mkhanPage.headers["Referrer-Policy"] == "no-referrer")

            // carol leaves during the campaign: her item closes itself, and needs no answer.
            let leaver = HREventLines.event("evt-carol-leaves", "leaver", user: "carol", employeeNumber: 1005)
            #expect(try await daemon.cli(["ingest", "-"], input: Data((leaver + "\n").utf8)).code == 0)
            let afterLeaver = try #require(
                Self.json(try await daemon.cli(["reviews", "show", id, "--json"]).stdout) as? [String: Any])
            let carolItems = ((afterLeaver["items"] as? [[String: Any]]) ?? []).filter { $0["subject"] as? String == "carol" }
            #expect(!carolItems.isEmpty && carolItems.allSatisfy { $0["outcome"] as? String == "gone" })

            // The due date comes: the scheduler applies decisions and defaults.
            clock.advance(by: 14 * 86_400 + 1)
            let closed = await eventually(timeout: 30) {
                (Self.json((try? await daemon.cli(["reviews", "--json"]).stdout) ?? "") as? [[String: Any]])?.first?["status"]
                    as? String == "closed"
            }
            #expect(closed)
            #expect(try await client.send("GET", jdoeLink).status == 403)

            // alice keeps hers (decided) and frank his (mkhan kept it); nobody answered for the
            // rest, and the default revoked it. The autonomous agents keep their own grants.
            let grants = ((Self.json(try await daemon.cli(["grants", "--json"]).stdout) as? [[String: Any]]) ?? [])
            let holders = Set(grants.map { "\($0["subject"] ?? "") \($0["agent"] ?? "")" }.filter { !$0.hasPrefix("agent:") })
            #expect(holders == ["alice support-copilot", "frank finance-analyst"])
            let exceptions = (Self.json(try await daemon.cli(["exceptions", "--json"]).stdout) as? [[String: Any]]) ?? []
            let revokedItems = items.filter {
                !["alice support-copilot", "frank finance-analyst"].contains("\($0["subject"] ?? "") \($0["agent"] ?? "")")
                    && $0["subject"] as? String != "carol"
            }
            #expect(!exceptions.contains { $0["subject"] as? String == "carol" })
            #expect(exceptions.count == revokedItems.reduce(0) { $0 + (($1["grants"] as? [Any])?.count ?? 0) })
            // The gateway heard every revocation.
            #expect(await eventually(timeout: 30) { target.held.count == grants.count }, "\(target.changes.suffix(3))")
            #expect(exceptions.allSatisfy { ($0["reason"] as? String)?.contains(id) == true && $0["effect"] as? String == "deny" })
            #expect(exceptions.contains { $0["subject"] as? String == "bob" && $0["approver"] as? String == "reviewer:jdoe" })

            // The report: each seq it names is the record it says, in `tether audit`.
            let report = try #require(Self.json(try await daemon.cli(["reviews", "report", id, "--format", "json"]).stdout) as? [String: Any])
            let records = try await daemon.cli(["audit", "--json"]).stdout.split(separator: "\n").compactMap {
                Self.json(String($0)) as? [String: Any]
            }
            let bySeq = Dictionary(records.map { ($0["seq"] as? Int ?? -1, $0) }, uniquingKeysWith: { a, _ in a })
            let reportItems = try #require(report["items"] as? [[String: Any]])
            #expect(reportItems.count == items.count)
            for item in reportItems {
                if let seq = item["decisionSeq"] as? Int {
                    #expect(bySeq[seq]?["action"] as? String == "review.decided")
                    #expect(bySeq[seq]?["decision"] as? String == item["decision"] as? String)
                    #expect(bySeq[seq]?["subject"] as? String == item["subject"] as? String)
                }
                let outcome = item["outcome"] as? String
                for seq in item["appliedSeqs"] as? [Int] ?? [] {
                    let actions = outcome == "gone" ? ["review.item_closed"] : ["exception.added", "grant.revoked"]
                    #expect(actions.contains(bySeq[seq]?["action"] as? String ?? ""))
                    #expect(bySeq[seq]?["subject"] as? String == item["subject"] as? String)
                    #expect(bySeq[seq]?["agent"] as? String == item["agent"] as? String)
                }
                let changed = ["revoked", "revoked-by-default", "gone"].contains(outcome)
                #expect((item["appliedSeqs"] as? [Int] ?? []).isEmpty != changed)
                #expect((outcome == "gone") == (item["subject"] as? String == "carol"))
            }
            let html = try await daemon.cli(["reviews", "report", id, "--format", "html"]).stdout
            #expect(html.contains("<svg class=\"chart\""))
            #expect(html.contains("Q4 agent access"))
            let csv = try await daemon.cli(["reviews", "report", id, "--format", "csv"]).stdout
            #expect(csv.split(separator: "\r\n").count == items.count + 1)
            #expect(try await daemon.cli(["reviews", "report", id, "--format", "pdf"]).code == 1)

            // The links are credentials: no log line holds one.
            let token = String(jdoeLink.dropFirst("/review/".count))
            #expect(!daemon.log().contains(token))
            #expect(!daemon.log().contains(String(mkhanLink.dropFirst("/review/".count))))
        }
    }

    @Test func linksReachTheNotifyTargetAndAnExpiredOneIsRefusedWhileTheCloseWaitsForAnApproval() async throws {
        let clock = ManualWallClock(Date())
        let target = RecordingTarget(secret: "notify-secret")
        try await target.start()
        defer { Task { await target.stop() } }
        let folder = try DaemonProcess.folder(files: ["hr.secret": "secret-one", "notify.secret": "notify-secret"])
        let tight = Self.config.replacingOccurrences(of: "maxRevocationsPerRun: 100", with: "maxRevocationsPerRun: 2")
            .replacingOccurrences(
                of: "reviews: { unusedAfter: 30d }",
                with: "reviews: { unusedAfter: 30d, publicURL: \"https://tether.example.com/\", notify: { url: \"\(target.checkpointURL)\", secretFile: notify.secret } }")
        try await InProcessDaemon.run(config: tight, folder: folder, engineClock: clock) { daemon in
            #expect(try await daemon.cli(["ingest", "-"], input: Data(HREventLines.joiners(Self.staff).utf8)).code == 0)
            let started = try await daemon.cli([
                "reviews", "start", "--name", "Notes", "--scope", "agent:notes-bot", "--due", "2d", "--if-no-answer", "revoke", "--json",
            ])
            let id = try #require(((Self.json(started.stdout) as? [String: Any])?["campaign"] as? [String: Any])?["id"] as? String)
            let links = try #require(Self.json(try await daemon.cli(["reviews", "links", id, "--json"]).stdout) as? [String: Any])
            let url = try #require((links["links"] as? [[String: Any]])?.first?["url"] as? String)
            #expect(url.hasPrefix("https://tether.example.com/review/"))
            let link = try Self.path(of: url)
            // The start sent dave's link, signed, once: the same as `links` prints.
            let sent = try #require(target.checkpoints.first)
            #expect(target.checkpoints.count == 1)
            #expect(sent.signatureValid)
            #expect(sent.idempotencyKey == "review:\(id):dave")
            let message = try #require(Self.json(sent.body) as? [String: Any])
            #expect(message["url"] as? String == url)
            #expect(message["reviewer"] as? String == "dave" && message["email"] as? String == "dave@example.com")
            #expect(message["items"] as? Int == 4 && message["name"] as? String == "Notes")
            let resent = try await daemon.cli(["reviews", "links", id, "--notify"])
            #expect(resent.stdout.contains("links sent to reviews.notify: 1"), "\(resent.stdout)")
            #expect(target.checkpoints.count == 2)
            let client = PageClient(port: daemon.port)
            #expect(try await client.send("GET", link).status == 200)

            clock.advance(by: 2 * 86_400)
            let expired = try await client.send("GET", link)
            #expect(expired.status == 403)
            #expect(expired.body.contains("This link has expired"))
            // Four revocations are more than maxRevocationsPerRun 2: the close waits.
            let held = await eventually(timeout: 30) {
                (Self.json((try? await daemon.cli(["reviews", "--json"]).stdout) ?? "") as? [[String: Any]])?.first?["status"]
                    as? String == "closing"
            }
            let listing = try await daemon.cli(["reviews", "--json"]).stdout
            #expect(held, "\(listing)\n\(daemon.log())")
            let shown = try await daemon.cli(["reviews", "show", id])
            let plan = try #require(shown.stdout.split(separator: " ").first { $0.hasPrefix("p_") }.map { String($0.prefix(34)) })
            #expect(try await daemon.cli(["approve", plan]).code == 0)
            let rows = Self.json(try await daemon.cli(["reviews", "--json"]).stdout) as? [[String: Any]]
            #expect(rows?.first?["status"] as? String == "closed")
            #expect((Self.json(try await daemon.cli(["grants", "--agent", "notes-bot", "--json"]).stdout) as? [Any])?.isEmpty == true)
        }
    }

    @Test func badRequestsAreRefusedWithWhatIsWrongAndRecordNothing() async throws {
        let folder = try DaemonProcess.folder(files: ["hr.secret": "secret-one"])
        try await InProcessDaemon.run(config: Self.config, folder: folder) { daemon in
            #expect(try await daemon.cli(["ingest", "-"], input: Data(HREventLines.joiners(Self.staff).utf8)).code == 0)
            for (arguments, message) in [
                (["--scope", "everyone"], "--scope everyone: expected all, agent:ID or policy:ID"),
                (["--scope", "agent:nope"], "agent nope is not configured or registered"),
                (["--scope", "policy:nope"], "no policy has id nope"),
                (["--reviewer", "boss"], "--reviewer boss: expected sponsor or manager"),
                (["--if-no-answer", "maybe"], "--if-no-answer maybe: expected keep or revoke"),
                (["--due", "soon"], "--due soon: expected an RFC 3339 time"),
                (["--due", "2001-01-01T00:00:00Z"], "is not in the future"),
                (["--name", " "], "--name must not be empty"),
            ] {
                let result = try await daemon.cli(["reviews", "start", "--name", "Q4"] + arguments)
                #expect(result.code == 1, "\(arguments)")
                #expect(result.stderr.contains(message), "\(result.stderr)")
            }
            for command in [["show", "r_nope"], ["close", "r_nope"], ["links", "r_nope"], ["report", "r_nope"]] {
                let result = try await daemon.cli(["reviews"] + command)
                #expect(result.code == 1)
                #expect(result.stderr.contains("no review has that id"), "\(command): \(result.stderr)")
            }
            #expect(try await daemon.cli(["reviews", "--json"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "[]")
            #expect(!(try await daemon.cli(["audit", "--json"]).stdout.contains("review.")))
        }
    }

    static var script: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/browser/review-page.py").path
    }
}

/// HTTP to the review page without a cookie jar and without following redirects: the test
/// says which cookie a request carries and sees each answer as sent.
final class PageClient: NSObject, URLSessionTaskDelegate, Sendable {
    struct Answer {
        var status: Int
        var body: String
        var headers: [String: String]
        /// The `name=value` of a cookie the answer sets.
        var cookie: String?
        var location: String? { headers["Location"] }
    }

    let port: Int

    init(port: Int) { self.port = port }

    func send(_ method: String, _ path: String, form: [String: String]? = nil, cookie: String? = nil) async throws -> Answer {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        request.httpMethod = method
        request.httpShouldHandleCookies = false
        if let form {
            request.setValue("application/x-www-form-urlencoded", forHTTPHeaderField: "Content-Type")
            request.httpBody = Data(form.map { "\($0.key)=\(Self.encoded($0.value))" }.joined(separator: "&").utf8)
        }
        if let cookie { request.setValue(cookie, forHTTPHeaderField: "Cookie") }
        let configuration = URLSessionConfiguration.ephemeral
        configuration.httpCookieStorage = nil
        let session = URLSession(configuration: configuration, delegate: self, delegateQueue: nil)
        defer { session.finishTasksAndInvalidate() }
        let (data, response) = try await session.data(for: request)
        let http = response as! HTTPURLResponse
        var headers: [String: String] = [:]
        for (name, value) in http.allHeaderFields { headers["\(name)"] = "\(value)" }
        let cookie = headers["Set-Cookie"].map { String($0.prefix { $0 != ";" }) }
        return Answer(status: http.statusCode, body: String(decoding: data, as: UTF8.self), headers: headers, cookie: cookie)
    }

    func urlSession(
        _ session: URLSession, task: URLSessionTask, willPerformHTTPRedirection response: HTTPURLResponse,
        newRequest request: URLRequest, completionHandler: @escaping @Sendable (URLRequest?) -> Void
    ) { completionHandler(nil) }

    /// The form token in a page.
    static func csrf(in page: String) -> String? {
        guard let range = page.range(of: #"name="csrf" value=""#) else { return nil }
        return String(page[range.upperBound...].prefix { $0 != "\"" })
    }

    static func encoded(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text
    }
}
