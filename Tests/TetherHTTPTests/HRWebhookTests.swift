import Foundation
import GRDB
import Hummingbird
import HummingbirdTesting
import Testing
import TetherCore
import TetherEngine
import TetherHTTP
import TetherStore

/// `POST /hooks/hr`, in-process through the real router, engine and SQLite store.
@Suite struct HRWebhookTests {
    @Test func aSignedJoinerIsAppliedWithItsFacts() async throws {
        let harness = try await Harness()
        try await harness.seedSponsors()
        try await harness.application.test(.router) { client in
            let response = try await HR.post(client, harness, HR.body(id: "evt-1"))
            #expect(response.status == .ok)
            #expect(response.answer == #"{"status":"applied"}"#)
            #expect(response.headers[.contentType] == "application/json")
        }
        let alice = try #require(try await harness.store.identity(userName: "alice"))
        #expect(alice.status == .active)
        #expect(alice.email == "alice@example.com")  // the primary one
        #expect(alice.displayName == "Alice")
        #expect(alice.employeeNumber == "1001")
        #expect(alice.department == "Support")
        #expect(alice.title == "Support Engineer")
        #expect(alice.attributes["costCenter"] == ["CC-7"])
        let facts = try #require(alice.sources[.hr])
        #expect(facts.externalId == "E1001")
        #expect(facts.manager == "E1000")
        #expect(facts.version == "2026-11-18T08:00:00.000000Z")
        #expect(try await harness.store.eventStatus(id: "evt-1") == .applied)
        #expect(try await harness.grantLines().filter { $0.hasPrefix("alice ") } == [
            "alice support-copilot tickets:read zendesk:queue/Support",
            "alice support-copilot tickets:write zendesk:queue/Support",
        ])
        let joined = try await harness.auditRecords().last { $0.action == "identity.joined" }
        #expect(joined?["actor"] == "hr")
        #expect(joined?["event"] == "evt-1")
    }

    @Test func aMoverChangesFactsAndGrantsWithoutClaimingAStatus() async throws {
        let harness = try await Harness()
        try await harness.seedSponsors()
        try await harness.application.test(.router) { client in
            #expect(try await HR.post(client, harness, HR.body(id: "evt-1")).status == .ok)
            let moved = try await HR.post(
                client, harness, HR.body(id: "evt-2", type: "mover", occurredAt: "2026-11-18T09:00:00Z", department: "Legal"))
            #expect(moved.status == .ok)
            #expect(moved.answer == #"{"status":"applied"}"#)
        }
        #expect(try await harness.store.identity(userName: "alice")?.department == "Legal")
        #expect(try await harness.store.identity(userName: "alice")?.status == .active)
        #expect(try await harness.grantLines().filter { $0.hasPrefix("alice ") }.isEmpty)
    }

    @Test func aLeaverEffectiveNowAnswersAfterTheRevocationCommitted() async throws {
        let harness = try await Harness()
        try await harness.seedSponsors()
        try await harness.application.test(.router) { client in
            #expect(try await HR.post(client, harness, HR.body(id: "evt-1")).status == .ok)
            #expect(try await Check.post(client, "alice", "support-copilot", "tickets:read", "zendesk:queue/Support").json["allowed"] as? Bool == true)
            let leaver = try await HR.post(
                client, harness,
                HR.body(id: "evt-2", type: "leaver", occurredAt: "2026-11-18T10:00:00Z", effectiveAt: "2026-11-18T10:00:00Z", active: false))
            #expect(leaver.status == .ok)
            #expect(leaver.answer == #"{"status":"applied","revoked":2}"#)
            // Already committed and indexed when the answer arrived.
            #expect(try await harness.grantLines().filter { $0.hasPrefix("alice ") }.isEmpty)
            let check = try await Check.post(client, "alice", "support-copilot", "tickets:read", "zendesk:queue/Support")
            #expect(check.json["allowed"] as? Bool == false)
            #expect(check.json["reason"] as? String == "identity alice terminated")
        }
        #expect(try await harness.store.identity(userName: "alice")?.status == .terminated)
        let revoked = try await harness.auditRecords().filter { $0.action == "grant.revoked" }
        #expect(revoked.count == 2)
        #expect(revoked.allSatisfy { $0["actor"] == "hr" && $0["event"] == "evt-2" })
    }

    @Test func aMoverWhosePlanTheSafetyGatesHoldIsAcceptedButWaits() async throws {
        let harness = try await Harness(safety: SafetyLimits(maxRevocationsPerRun: 1))
        try await harness.seedSponsors()
        try await harness.application.test(.router) { client in
            #expect(try await HR.post(client, harness, HR.body(id: "evt-1")).status == .ok)
            let moved = try await HR.post(
                client, harness, HR.body(id: "evt-2", type: "mover", occurredAt: "2026-11-18T09:00:00Z", department: "Legal"))
            #expect(moved.status == .accepted)
            #expect(moved.json["status"] as? String == "held")
            let plan = try #require(moved.json["plan"] as? String)
            #expect(plan.hasPrefix("p_"))
            #expect(try await harness.store.plans(status: .held).map(\.plan.id) == [plan])
        }
        #expect(try await harness.grantLines().filter { $0.hasPrefix("alice ") }.count == 2)
    }

    @Test func aSecondSecretVerifiesDuringRotation() async throws {
        let harness = try await Harness(secrets: [Harness.oldSecret, Harness.newSecret])
        try await harness.application.test(.router) { client in
            let withNew = try await HR.post(client, harness, HR.body(id: "evt-1"), secrets: [Harness.newSecret])
            #expect(withNew.status == .ok)
            let withOld = try await HR.post(
                client, harness, HR.body(id: "evt-2", type: "mover", occurredAt: "2026-11-18T09:00:00Z"), secrets: [Harness.oldSecret])
            #expect(withOld.status == .ok)
        }
        #expect(try await harness.store.eventStatus(id: "evt-1") == .applied)
        #expect(try await harness.store.eventStatus(id: "evt-2") == .applied)
    }

    @Test func anyOfSeveralV1SignaturesMayMatch() async throws {
        let harness = try await Harness(secrets: [Harness.newSecret])
        let body = HR.body(id: "evt-1")
        // The sender signs with the old and the new secret while it rotates; the receiver has only the new one.
        let both = WebhookSignature.header(body: Array(body.utf8), secrets: [Harness.oldSecret, Harness.newSecret], time: harness.clock.now())
        #expect(both.split(separator: ",").count == 3)
        // And a garbage v1 and an unknown scheme in front of the good one.
        let valid = try #require(both.split(separator: ",").last)
        let noisy = "t=\(Int(harness.clock.now().timeIntervalSince1970)),v1=zz,v0=abc, v1=\(String(repeating: "0", count: 64)), \(valid)"
        try await harness.application.test(.router) { client in
            let first = try await HR.post(client, harness, body, headers: [WebhookSignature.headerName: both])
            #expect(first.status == .ok)
            let second = HR.body(id: "evt-2", type: "mover", occurredAt: "2026-11-18T09:00:00Z")
            let secondHeader = WebhookSignature.header(body: Array(second.utf8), secrets: [Harness.newSecret], time: harness.clock.now())
            let noisySecond = noisy.replacingOccurrences(of: String(valid), with: String(secondHeader.split(separator: ",")[1]))
            #expect(try await HR.post(client, harness, second, headers: [WebhookSignature.headerName: noisySecond]).status == .ok)
        }
        #expect(try await harness.store.eventStatus(id: "evt-2") == .applied)
    }

    /// Each refusal is 401, leaves an `event.rejected` record naming what failed (never the
    /// secret or the signature), and applies nothing.
    @Test(arguments: [
        Refusal.wrongSecret, .expiredTimestamp, .futureTimestamp, .missingHeader, .noTimestamp, .noSignature, .bodyChangedAfterSigning,
    ])
    func aBadSignatureIsRefusedAuditedAndAppliesNothing(_ refusal: Refusal) async throws {
        let harness = try await Harness()
        let body = HR.body(id: "evt-1")
        let now = harness.clock.now()
        let headers: HTTPFields
        let reason: String
        switch refusal {
        case .wrongSecret:
            headers = HR.headers(body, secrets: [Array("not-the-secret".utf8)], time: now)
            reason = "no v1 signature (1 given) matches any configured secret"
        case .expiredTimestamp:
            headers = HR.headers(body, time: now.addingTimeInterval(-301))
            reason = "signature timestamp is 301 s in the past, beyond the tolerance of 300 s"
        case .futureTimestamp:
            headers = HR.headers(body, time: now.addingTimeInterval(400))
            reason = "signature timestamp is 400 s in the future, beyond the tolerance of 300 s"
        case .missingHeader:
            headers = [.contentType: "application/json"]
            reason = "missing Tether-Signature header"
        case .noTimestamp:
            let signed = HR.headers(body, time: now)[WebhookSignature.headerName]!
            headers = [WebhookSignature.headerName: String(signed.split(separator: ",")[1])]
            reason = "malformed Tether-Signature header: no t"
        case .noSignature:
            headers = [WebhookSignature.headerName: "t=\(Int(now.timeIntervalSince1970))"]
            reason = "malformed Tether-Signature header: no v1 signature"
        case .bodyChangedAfterSigning:
            headers = HR.headers(HR.body(id: "evt-1", department: "Legal"), time: now)
            reason = "no v1 signature (1 given) matches any configured secret"
        }
        try await harness.application.test(.router) { client in
            let response = try await HR.post(client, harness, body, headers: headers)
            #expect(response.status == .unauthorized)
            #expect(response.json["error"] as? String == "unauthorized")
            #expect(response.json["detail"] as? String == reason)
        }
        let records = try await harness.auditRecords()
        #expect(records.map(\.action) == ["event.rejected"])
        #expect(records.first?["reason"] == reason)
        #expect(records.first?["actor"] == "hr")
        #expect(records.first?["source"] == "hr")
        #expect(try await harness.store.eventStatus(id: "evt-1") == nil)
        #expect(try await harness.store.identities(status: nil).isEmpty)
        let signatures = (headers[WebhookSignature.headerName] ?? "").split(separator: ",").filter { $0.hasPrefix("v1=") }.map { $0.dropFirst(3) }
        for line in harness.logs.all {
            #expect(!line.contains("old-secret"))
            #expect(!line.contains("not-the-secret"))
            #expect(!signatures.contains { line.contains($0) })
        }
        #expect(harness.logs.all.contains { $0.contains("HR event rejected") && $0.contains(reason) })
    }

    /// A stranger cannot make the store write at will: past the budget, refusals are counted
    /// and logged, and the next one audited says how many went before it.
    @Test func refusalsPastTheBudgetAreCountedNotEachAudited() async throws {
        let harness = try await Harness(refusals: RefusalAuditBudget(burst: 3, perSecond: 0.5))
        let body = HR.body(id: "evt-1")
        let forged: @Sendable () -> HTTPFields = {
            HR.headers(body, secrets: [Array("not-the-secret".utf8)], time: harness.clock.now())
        }
        try await harness.application.test(.router) { client in
            for _ in 0..<10 {
                let refused = try await HR.post(client, harness, body, headers: forged())
                #expect(refused.status == .unauthorized)
            }
            let audited = try await harness.auditRecords().count { $0.action == "event.rejected" }
            #expect(audited == 3)
            harness.clock.advance(by: 2)
            let refused = try await HR.post(client, harness, body, headers: forged())
            #expect(refused.status == .unauthorized)
            // A signed event is never held back by the budget.
            let signed = try await HR.post(client, harness, body, headers: HR.headers(body, time: harness.clock.now()))
            #expect(signed.status == .ok)
        }
        let rejected = try await harness.auditRecords().filter { $0.action == "event.rejected" }
        #expect(rejected.count == 4)
        let since = Timestamp.string(Harness.start)
        #expect(rejected.last?["reason"]?.hasSuffix("; 7 earlier refusals since \(since) were not audited one by one") == true)
        #expect(harness.logs.all.count { $0.contains("HR event rejected") } == 11, "every refusal is logged")
        #expect(try await harness.store.eventStatus(id: "evt-1") != nil)
    }

    @Test func theRefusalBudgetRefillsAtItsRateUpToItsBurst() {
        let budget = RefusalAuditBudget(burst: 2, perSecond: 1)
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        #expect(budget.admit(at: start) == .audit(unaudited: 0, since: nil))
        #expect(budget.admit(at: start) == .audit(unaudited: 0, since: nil))
        #expect(budget.admit(at: start) == .skip)
        #expect(budget.admit(at: start.addingTimeInterval(0.5)) == .skip)
        #expect(budget.admit(at: start.addingTimeInterval(1)) == .audit(unaudited: 2, since: start))
        // A long quiet spell refills only up to the burst.
        let later = start.addingTimeInterval(3_600)
        #expect(budget.admit(at: later) == .audit(unaudited: 0, since: nil))
        #expect(budget.admit(at: later) == .audit(unaudited: 0, since: nil))
        #expect(budget.admit(at: later) == .skip)
    }

    enum Refusal: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case wrongSecret, expiredTimestamp, futureTimestamp, missingHeader, noTimestamp, noSignature, bodyChangedAfterSigning
        var testDescription: String { rawValue }
    }

    @Test func aTimestampAtTheEdgeOfTheToleranceIsAccepted() async throws {
        let harness = try await Harness()
        try await harness.application.test(.router) { client in
            let past = try await HR.post(client, harness, HR.body(id: "evt-1"), time: harness.clock.now().addingTimeInterval(-300))
            #expect(past.status == .ok)
            let future = try await HR.post(
                client, harness, HR.body(id: "evt-2", type: "mover", occurredAt: "2026-11-18T09:00:00Z"),
                time: harness.clock.now().addingTimeInterval(300))
            #expect(future.status == .ok)
        }
    }

    @Test func aReplayedIdIsADuplicateAndChangesNothing() async throws {
        let harness = try await Harness()
        try await harness.seedSponsors()
        let body = HR.body(id: "evt-1")
        try await harness.application.test(.router) { client in
            #expect(try await HR.post(client, harness, body).status == .ok)
            let before = try await harness.auditRecords().count
            harness.clock.advance(by: 60)
            // The same id and body, re-signed later: a retry.
            let replay = try await HR.post(client, harness, body)
            #expect(replay.status == .ok)
            #expect(replay.answer == #"{"status":"duplicate"}"#)
            #expect(try await harness.auditRecords().count == before)
        }
        #expect(try await harness.store.identity(userName: "alice")?.status == .active)
    }

    @Test func anIdSeenBeforeWithAnotherBodyIsA409AndChangesNothing() async throws {
        let harness = try await Harness()
        try await harness.seedSponsors()
        try await harness.application.test(.router) { client in
            #expect(try await HR.post(client, harness, HR.body(id: "evt-1")).status == .ok)
            let grants = try await harness.grantLines()
            let altered = try await HR.post(client, harness, HR.body(id: "evt-1", type: "leaver", active: false))
            #expect(altered.status == .conflict, "\(altered.text)")
            #expect(altered.text.contains("evt-1 was received before with a different body"))
            #expect(altered.text.contains(#""path":"$.id""#))
            #expect(try await harness.grantLines() == grants)
            let refused = try await harness.auditRecords().last
            #expect(refused?.action == "event.rejected")
            #expect(refused?["event"] == "evt-1")
            // The same body with its keys in another order is the same event: a duplicate.
            let reordered = try JSONSerialization.data(
                withJSONObject: try JSONSerialization.jsonObject(with: Data(HR.body(id: "evt-1").utf8)), options: [.prettyPrinted])
            let retry = try await HR.post(client, harness, String(decoding: reordered, as: UTF8.self))
            #expect(retry.answer == #"{"status":"duplicate"}"#)
        }
        #expect(try await harness.store.identity(userName: "alice")?.status == .active)
    }

    /// The issue's case: a mover dated 2099 was applied, and the person's real leaver a
    /// minute later was answered `stale`.
    @Test func anOccurredAtFromTheFutureIsA400AndTheLeaverThatFollowsApplies() async throws {
        let harness = try await Harness()
        try await harness.seedSponsors()
        try await harness.application.test(.router) { client in
            #expect(try await HR.post(client, harness, HR.body(id: "evt-1")).status == .ok)
            let future = try await HR.post(
                client, harness, HR.body(id: "evt-2", type: "mover", occurredAt: "2099-01-01T00:00:00Z", department: "Legal"))
            #expect(future.status == .badRequest, "\(future.text)")
            #expect(future.text.contains(#""path":"$.occurredAt""#))
            #expect(future.text.contains("is later than now"))
            #expect(try await harness.auditRecords().last?.action == "event.rejected")
            // Just inside the tolerance (5 minutes) is accepted; just past it is not.
            let edge = Timestamp.string(harness.clock.now().addingTimeInterval(300))
            let late = Timestamp.string(harness.clock.now().addingTimeInterval(300.001))
            #expect(try await HR.post(client, harness, HR.body(id: "evt-3", type: "mover", occurredAt: late)).status == .badRequest)
            #expect(try await HR.post(client, harness, HR.body(id: "evt-4", type: "mover", occurredAt: edge)).status == .ok)
            harness.clock.advance(by: 360)
            let leaver = try await HR.post(
                client, harness,
                HR.body(id: "evt-5", type: "leaver", occurredAt: Timestamp.string(harness.clock.now()), active: false))
            #expect(leaver.answer == #"{"status":"applied","revoked":2}"#)
        }
        #expect(try await harness.store.identity(userName: "alice")?.status == .terminated)
        #expect(try await harness.store.eventStatus(id: "evt-2") == nil, "nothing of the refused event was recorded")
    }

    @Test func anEventOlderThanWhatWasAppliedIsStale() async throws {
        let harness = try await Harness()
        try await harness.seedSponsors()
        try await harness.application.test(.router) { client in
            #expect(try await HR.post(client, harness, HR.body(id: "evt-2", occurredAt: "2026-11-18T09:00:00Z")).status == .ok)
            let stale = try await HR.post(
                client, harness, HR.body(id: "evt-1", type: "mover", occurredAt: "2026-11-18T08:59:59.999Z", department: "Legal"))
            #expect(stale.status == .ok)
            #expect(stale.answer == #"{"status":"stale"}"#)
        }
        #expect(try await harness.store.identity(userName: "alice")?.department == "Support")
        #expect(try await harness.store.eventStatus(id: "evt-1") == .stale)
        #expect(try await harness.auditRecords().last?.action == "event.stale")
    }

    @Test func aFutureLeaverIsScheduledAppliedAtItsTimeAndKeptAcrossARestart() async throws {
        let harness = try await Harness()
        try await harness.seedSponsors()
        let effective = harness.clock.now().addingTimeInterval(3_600)
        try await harness.application.test(.router) { client in
            #expect(try await HR.post(client, harness, HR.body(id: "evt-1")).status == .ok)
            let scheduled = try await HR.post(
                client, harness,
                HR.body(id: "evt-2", type: "leaver", occurredAt: "2026-11-18T09:00:00Z", effectiveAt: Timestamp.string(effective), active: false))
            #expect(scheduled.status == .accepted)
            #expect(scheduled.answer == #"{"status":"scheduled"}"#)
            // Until then alice keeps her grants.
            #expect(try await Check.post(client, "alice", "support-copilot", "tickets:read", "zendesk:queue/Support").json["allowed"] as? Bool == true)
        }
        #expect(try await harness.engine.applyDueLeavers().isEmpty)

        // The daemon restarts: a new store and engine over the same file still know the leaver.
        let restarted = try await harness.restarted()
        harness.clock.advance(by: 3_599)
        #expect(try await restarted.engine.applyDueLeavers().isEmpty)
        harness.clock.advance(by: 1)
        let applied = try await restarted.engine.applyDueLeavers()
        #expect(applied.map(\.status) == [.applied])
        #expect(applied.first?.revoked == 2)
        #expect(try await restarted.store.identity(userName: "alice")?.status == .terminated)
        try await restarted.application.test(.router) { client in
            let check = try await Check.post(client, "alice", "support-copilot", "tickets:read", "zendesk:queue/Support")
            #expect(check.json["allowed"] as? Bool == false)
            #expect(check.json["reason"] as? String == "identity alice terminated")
            // The same webhook delivered again after the fact is a duplicate.
            let replay = try await HR.post(
                client, restarted,
                HR.body(id: "evt-2", type: "leaver", occurredAt: "2026-11-18T09:00:00Z", effectiveAt: Timestamp.string(effective), active: false))
            #expect(replay.answer == #"{"status":"duplicate"}"#)
        }
    }

    @Test func aLeaverForAnUnknownPersonLeavesATombstoneThatStopsALateJoiner() async throws {
        let harness = try await Harness()
        try await harness.seedSponsors()
        try await harness.application.test(.router) { client in
            let leaver = try await HR.post(
                client, harness,
                HR.body(id: "evt-9", type: "leaver", occurredAt: "2026-11-18T10:00:00Z", userName: "zoe", externalId: "E2002", active: false,
                    employeeNumber: "2002"))
            #expect(leaver.status == .ok)
            #expect(leaver.answer == #"{"status":"applied","revoked":0}"#)
            // A joiner-era record that arrives late cannot create grants for her.
            let late = try await HR.post(
                client, harness,
                HR.body(id: "evt-3", type: "joiner", occurredAt: "2026-11-01T09:00:00Z", userName: "zoe", externalId: "E2002", employeeNumber: "2002"))
            #expect(late.answer == #"{"status":"stale"}"#)
        }
        let zoe = try #require(try await harness.store.identity(userName: "zoe"))
        #expect(zoe.isTombstone)
        #expect(zoe.status == .terminated)
        #expect(try await harness.grantLines().filter { $0.hasPrefix("zoe ") }.isEmpty)
    }

    /// Each malformed body is a 400 naming the field and what is wrong, audited, applying nothing.
    @Test(arguments: [
        Malformed(name: "bad JSON", body: #"{"id":"evt-1","type":"joiner","#, path: "$", detail: "the body is not valid JSON"),
        Malformed(name: "not an object", body: #"["evt-1"]"#, path: "$", detail: "expected an object"),
        Malformed(name: "missing id", body: HR.body(id: "x").replacingOccurrences(of: #""id":"x","#, with: ""), path: "$.id", detail: "is required"),
        Malformed(name: "empty id", body: HR.body(id: ""), path: "$.id", detail: "must not be empty"),
        Malformed(name: "id not a string", body: HR.body(id: "x").replacingOccurrences(of: #""id":"x""#, with: #""id":42"#), path: "$.id", detail: "expected a string"),
        Malformed(name: "bad type", body: HR.body(id: "evt-1", type: "quitter"), path: "$.type", detail: #"must be joiner, mover or leaver, not "quitter""#),
        Malformed(name: "bad date", body: HR.body(id: "evt-1", occurredAt: "yesterday"), path: "$.occurredAt", detail: #""yesterday" is not an RFC 3339 date-time"#),
        Malformed(name: "bad effective date", body: HR.body(id: "evt-1", type: "leaver", effectiveAt: "2026-13-45T00:00:00Z", active: false), path: "$.effectiveAt", detail: "is not an RFC 3339 date-time"),
        Malformed(name: "missing user", body: #"{"id":"evt-1","type":"joiner","occurredAt":"2026-11-18T08:00:00Z"}"#, path: "$.user", detail: "is required"),
        Malformed(name: "missing externalId", body: HR.body(id: "evt-1", externalId: nil), path: "$.user.externalId", detail: "is required"),
        Malformed(name: "active leaver", body: HR.body(id: "evt-1", type: "leaver", active: true), path: "$.user.active", detail: "a leaver cannot be active"),
        Malformed(name: "future joiner", body: HR.body(id: "evt-1", effectiveAt: "2030-01-01T00:00:00Z"), path: "$.effectiveAt", detail: "only a leaver can take effect later"),
        Malformed(
            name: "manager not an object",
            body: HR.body(id: "evt-1").replacingOccurrences(of: #""manager":{"value":"E1000"}"#, with: #""manager":"E1000""#),
            path: #"$.user["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"].manager"#, detail: "expected an object"),
        Malformed(
            name: "email without value",
            body: HR.body(id: "evt-1").replacingOccurrences(of: #"{"value":"alice@home.example"}"#, with: #"{"type":"home"}"#),
            path: "$.user.emails[1].value", detail: "is required"),
    ])
    func aMalformedBodyIsA400NamingTheField(_ malformed: Malformed) async throws {
        let harness = try await Harness()
        try await harness.application.test(.router) { client in
            let response = try await HR.post(client, harness, malformed.body)
            #expect(response.status == .badRequest)
            #expect(response.json["error"] as? String == "invalid_request")
            #expect(response.json["path"] as? String == malformed.path)
            let detail = try #require(response.json["detail"] as? String)
            #expect(detail.hasPrefix(malformed.path + ": "))
            #expect(detail.contains(malformed.detail))
        }
        let records = try await harness.auditRecords()
        #expect(records.map(\.action) == ["event.rejected"])
        #expect(records.first?["reason"]?.contains(malformed.path) == true)
        if malformed.name == "bad type" { #expect(records.first?["event"] == "evt-1") }
        #expect(try await harness.store.identities(status: nil).isEmpty)
        #expect(try await harness.store.eventStatus(id: "evt-1") == nil)
    }

    struct Malformed: Sendable, CustomTestStringConvertible {
        var name: String
        var body: String
        var path: String
        var detail: String
        var testDescription: String { name }
    }

    @Test func aBodyLargerThanTheLimitIsA413() async throws {
        let harness = try await Harness(maxBodyBytes: 1_024)
        let body = HR.body(id: "evt-1", userName: String(repeating: "a", count: 2_000))
        try await harness.application.test(.router) { client in
            let response = try await HR.post(client, harness, body)
            #expect(response.status == .contentTooLarge)
            #expect(response.json["error"] as? String == "payload_too_large")
            #expect((response.json["detail"] as? String)?.contains("1024 bytes") == true)
            // A body within the limit still goes through.
            #expect(try await HR.post(client, harness, HR.body(id: "evt-2")).status == .ok)
        }
        #expect(try await harness.store.eventStatus(id: "evt-1") == nil)
    }

    @Test func aStoreThatCannotWriteIsA503AndNothingIsApplied() async throws {
        let harness = try await Harness()
        try await harness.seedSponsors()
        try await harness.application.test(.router) { client in
            #expect(try await HR.post(client, harness, HR.body(id: "evt-1")).status == .ok)
            let grantsBefore = try await harness.grantLines()
            let auditBefore = try await harness.auditRecords().count

            // The database itself refuses the write, as a full disk or a lock would.
            let db = try DatabaseQueue(path: harness.path)
            try await db.write { try $0.execute(sql: "CREATE TRIGGER injected BEFORE INSERT ON events BEGIN SELECT RAISE(ABORT, 'injected failure'); END") }
            let leaver = try await HR.post(client, harness, HR.body(id: "evt-2", type: "leaver", occurredAt: "2026-11-18T10:00:00Z", active: false))
            #expect(leaver.status == .serviceUnavailable)
            #expect(leaver.json["error"] as? String == "store_unavailable")
            #expect(try await harness.grantLines() == grantsBefore)
            #expect(try await harness.auditRecords().count == auditBefore)
            #expect(try await harness.store.eventStatus(id: "evt-2") == nil)
            #expect(try await Check.post(client, "alice", "support-copilot", "tickets:read", "zendesk:queue/Support").json["allowed"] as? Bool == true)
            #expect(harness.logs.all.contains { $0.hasPrefix("error HR event not applied") && $0.contains("injected failure") })

            // The daemon keeps serving: once the store recovers, the retry applies.
            try await db.write { try $0.execute(sql: "DROP TRIGGER injected") }
            let retry = try await HR.post(client, harness, HR.body(id: "evt-2", type: "leaver", occurredAt: "2026-11-18T10:00:00Z", active: false))
            #expect(retry.answer == #"{"status":"applied","revoked":2}"#)
        }
    }

    @Test func theEndpointIsOffWithoutSecretsAndAUnknownPathIsAJSON404() async throws {
        let harness = try await Harness(secrets: nil)
        try await harness.application.test(.router) { client in
            let off = try await HR.post(client, harness, HR.body(id: "evt-1"))
            #expect(off.status == .notFound)
            #expect(off.json["error"] as? String == "not_found")
            let unknown = try await client.execute(uri: "/hooks/payroll", method: .post)
            #expect(unknown.status == .notFound)
            #expect(unknown.json["detail"] as? String == "no endpoint POST /hooks/payroll")
            let wrongMethod = try await client.execute(uri: "/hooks/hr", method: .get)
            #expect(wrongMethod.status == .notFound)
            #expect(wrongMethod.json["error"] as? String == "not_found")
        }
        #expect(try await harness.auditRecords().isEmpty)
    }

    @Test func aReloadCanRotateTheSecretsInPlace() async throws {
        let harness = try await Harness()
        try await harness.application.test(.router) { client in
            #expect(try await HR.post(client, harness, HR.body(id: "evt-1")).status == .ok)
            harness.access.update(hr: HRWebhookConfiguration(secrets: WebhookSecrets([Harness.newSecret])!), checkTokens: nil)
            let old = try await HR.post(client, harness, HR.body(id: "evt-2", type: "mover", occurredAt: "2026-11-18T09:00:00Z"))
            #expect(old.status == .unauthorized)
            let new = try await HR.post(
                client, harness, HR.body(id: "evt-2", type: "mover", occurredAt: "2026-11-18T09:00:00Z"), secrets: [Harness.newSecret])
            #expect(new.status == .ok)
            #expect(try await Check.post(client, "alice", "support-copilot", "tickets:read", "zendesk:queue/Support").status == .notFound)
        }
    }
}

/// The same webhook over a real socket.
@Suite struct HRWebhookLiveTests {
    @Test func aLeaverOverARealSocketRevokesBeforeTheAnswer() async throws {
        let harness = try await Harness(maxBodyBytes: 4_096)
        try await harness.seedSponsors()
        try await harness.application.test(.live) { client in
            #expect(try await HR.post(client, harness, HR.body(id: "evt-1")).status == .ok)
            let leaver = try await HR.post(
                client, harness, HR.body(id: "evt-2", type: "leaver", occurredAt: "2026-11-18T10:00:00Z", active: false))
            #expect(leaver.status == .ok)
            #expect(leaver.answer == #"{"status":"applied","revoked":2}"#)
            let unsigned = try await client.execute(uri: "/hooks/hr", method: .post, body: ByteBuffer(string: HR.body(id: "evt-3")))
            #expect(unsigned.status == .unauthorized)
            let huge = try await HR.post(client, harness, HR.body(id: "evt-4", userName: String(repeating: "z", count: 8_000)))
            #expect(huge.status == .contentTooLarge)
            #expect(huge.json["error"] as? String == "payload_too_large")
        }
        #expect(try await harness.store.identity(userName: "alice")?.status == .terminated)
        #expect(try await harness.auditRecords().filter { $0.action == "event.rejected" }.count == 1)
    }
}
