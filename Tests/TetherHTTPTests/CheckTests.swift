import Foundation
import Hummingbird
import HummingbirdTesting
import Synchronization
import Testing
import TetherCore
import TetherEngine
import TetherHTTP
import TetherStore

/// `POST /v1/check`, in-process through the real router over the engine's index.
@Suite struct CheckTests {
    /// alice (Support) joined through HR, holding the copilot on zendesk:queue/Support.
    static func world(tokens: [String]? = [Harness.token], maxBodyBytes: Int = 16_384) async throws -> Harness {
        let harness = try await Harness(tokens: tokens, maxBodyBytes: maxBodyBytes)
        try await harness.seedSponsors()
        try await harness.application.test(.router) { client in
            let joined = try await HR.post(client, harness, HR.body(id: "evt-alice"))
            #expect(joined.status == .ok)
        }
        return harness
    }

    @Test func anAllowedRequestNamesItsGrantPolicyAndDecision() async throws {
        let harness = try await Self.world()
        try await harness.application.test(.router) { client in
            let response = try await Check.post(client, "alice", "support-copilot", "tickets:write", "zendesk:queue/Support")
            #expect(response.status == .ok)
            #expect(response.headers[.contentType] == "application/json")
            let json = response.json
            #expect(json["allowed"] as? Bool == true)
            #expect(json["grant"] as? String == Grant(subject: "alice", agent: "support-copilot", scope: "tickets:write", resource: "zendesk:queue/Support").id)
            #expect(json["policy"] as? String == "support-tickets")
            #expect(json["reason"] as? String == "granted by policy support-tickets")
            let decision = try #require(json["decision"] as? String)
            #expect(decision.wholeMatch(of: /d_[0-9a-f]{32}/) != nil)
            let again = try await Check.post(client, "alice", "support-copilot", "tickets:write", "zendesk:queue/Support")
            #expect(again.json["decision"] as? String != decision)
        }
    }

    @Test(arguments: [
        Denial(name: "no grant", request: Check.body("alice", "support-copilot", "tickets:read", "zendesk:queue/Legal"),
               reason: "no grant of tickets:read on zendesk:queue/Legal for alice through support-copilot"),
        Denial(name: "no such scope", request: Check.body("alice", "support-copilot", "tickets:delete", "zendesk:queue/Support"),
               reason: "no grant of tickets:delete on zendesk:queue/Support for alice through support-copilot"),
        Denial(name: "unknown subject", request: Check.body("nobody", "support-copilot", "tickets:read", "zendesk:queue/Support"),
               reason: "subject nobody is not a known identity"),
        Denial(name: "unknown agent", request: Check.body("alice", "ghost", "tickets:read", "zendesk:queue/Support"),
               reason: "agent ghost is not configured or registered"),
    ])
    func aDeniedRequestSaysWhy(_ denial: Denial) async throws {
        let harness = try await Self.world()
        try await harness.application.test(.router) { client in
            let response = try await Check.post(client, denial.request)
            #expect(response.status == .ok)
            #expect(response.json["allowed"] as? Bool == false)
            #expect(response.json["reason"] as? String == denial.reason)
            #expect(response.json["grant"] == nil)
            #expect(response.json["policy"] == nil)
            #expect((response.json["decision"] as? String)?.hasPrefix("d_") == true)
        }
    }

    @Test func anAnswerEscapesWhatTheCallerSent() async throws {
        let harness = try await Self.world()
        let subject = "bob \"the\" \\ builder\n\u{1}é"
        let body = try JSONSerialization.data(withJSONObject: [
            "subject": subject, "agent": "support-copilot", "scope": "tickets:read", "resource": "zendesk:queue/Support",
        ])
        try await harness.application.test(.router) { client in
            let response = try await Check.post(client, String(decoding: body, as: UTF8.self))
            #expect(response.status == .ok)
            #expect(response.json["reason"] as? String == "subject \(subject) is not a known identity")
        }
    }

    @Test func anAnswersBodyIsItsFieldsInOrderEscapedAsEveryAnswerIs() throws {
        let allow = CheckAnswerer.Answer(
            decision: CheckDecision(allowed: true, grant: "g_1", policy: "p \"q\"\\", reason: "granted by policy p \"q\"\\"),
            id: "d_7", revision: 42)
        #expect(allow.body == #"{"allowed":true,"grant":"g_1","policy":"p \"q\"\\","reason":"granted by policy p \"q\"\\","decision":"d_7","revision":42}"#)
        let deny = CheckAnswerer.Answer(
            decision: CheckDecision(allowed: false, reason: "subject bob\n\u{1}é is not a known identity"), id: "d_8", revision: 0)
        #expect(deny.body == #"{"allowed":false,"reason":"subject bob\n\u0001é is not a known identity","decision":"d_8","revision":0}"#)
        var buffer = ByteBuffer(string: "head ")
        deny.write(into: &buffer)
        #expect(String(buffer: buffer) == "head " + deny.body)
    }

    struct Denial: Sendable, CustomTestStringConvertible {
        var name: String
        var request: String
        var reason: String
        var testDescription: String { name }
    }

    @Test func aTerminatedIdentityIsDenied() async throws {
        let harness = try await Self.world()
        try await harness.application.test(.router) { client in
            #expect(try await HR.post(client, harness, HR.body(id: "evt-2", type: "leaver", occurredAt: "2026-11-18T10:00:00Z", active: false)).status == .ok)
            let response = try await Check.post(client, "alice", "support-copilot", "tickets:read", "zendesk:queue/Support")
            #expect(response.json["allowed"] as? Bool == false)
            #expect(response.json["reason"] as? String == "identity alice terminated")
        }
    }

    @Test func anAgentWhoseSponsorLeftIsQuarantinedAndDenied() async throws {
        let harness = try await Self.world()
        try await harness.application.test(.router) { client in
            #expect(try await Check.post(client, "agent:ledger-bot", "ledger-bot", "ledger:read", "erp:ledger/2026").json["allowed"] as? Bool == true)
            let leaver = try await HR.post(
                client, harness,
                HR.body(id: "evt-m", type: "leaver", occurredAt: "2026-11-18T11:06:00Z", userName: "mkhan", externalId: "E-mkhan", active: false,
                    department: "People", employeeNumber: "7"))
            #expect(leaver.answer == #"{"status":"applied","revoked":1}"#)
            let response = try await Check.post(client, "agent:ledger-bot", "ledger-bot", "ledger:read", "erp:ledger/2026")
            #expect(response.json["allowed"] as? Bool == false)
            #expect(response.json["reason"] as? String == "agent ledger-bot quarantined: sponsor mkhan terminated")
        }
    }

    @Test func aResourceEndingInStarMatchesByPrefix() async throws {
        let harness = try await Self.world()
        try await harness.application.test(.router) { client in
            let deep = try await Check.post(client, "agent:ledger-bot", "ledger-bot", "ledger:read", "erp:ledger/2026/q4/entries")
            #expect(deep.json["allowed"] as? Bool == true)
            #expect(deep.json["grant"] as? String == Grant(subject: "agent:ledger-bot", agent: "ledger-bot", scope: "ledger:read", resource: "erp:ledger/*").id)
            #expect(deep.json["policy"] as? String == "agent:ledger-bot")
            let outside = try await Check.post(client, "agent:ledger-bot", "ledger-bot", "ledger:read", "erp:ledgers")
            #expect(outside.json["allowed"] as? Bool == false)
            let otherScope = try await Check.post(client, "agent:ledger-bot", "ledger-bot", "ledger:write", "erp:ledger/2026")
            #expect(otherScope.json["allowed"] as? Bool == false)
        }
    }

    @Test func aMissingOrWrongTokenIsA401WithAChallenge() async throws {
        let harness = try await Self.world(tokens: [Harness.token, Harness.secondToken])
        let body = Check.body("alice", "support-copilot", "tickets:read", "zendesk:queue/Support")
        try await harness.application.test(.router) { client in
            let missing = try await Check.post(client, body, token: nil)
            #expect(missing.status == .unauthorized)
            #expect(missing.headers[.wwwAuthenticate] == #"Bearer realm="tether""#)
            #expect(missing.json["error"] as? String == "unauthorized")
            let wrong = try await Check.post(client, body, token: "check-token-alph")
            #expect(wrong.status == .unauthorized)
            #expect(wrong.headers[.wwwAuthenticate] == #"Bearer realm="tether", error="invalid_token""#)
            let basic = try await client.execute(
                uri: "/v1/check", method: .post, headers: [.authorization: "Basic \(Harness.token)"], body: ByteBuffer(string: body))
            #expect(basic.status == .unauthorized)
            // Every token in the file is accepted, and the scheme is case-insensitive.
            #expect(try await Check.post(client, body, token: Harness.secondToken).json["allowed"] as? Bool == true)
            let lower = try await client.execute(
                uri: "/v1/check", method: .post, headers: [.authorization: "bearer \(Harness.token)"], body: ByteBuffer(string: body))
            #expect(lower.json["allowed"] as? Bool == true)
            // White space after the token is not part of the field's value (RFC 9110 §5.5),
            // as the connection handler that reads checks from the bytes also takes it.
            let spaced = try await client.execute(
                uri: "/v1/check", method: .post, headers: [.authorization: "Bearer  \(Harness.token) \t"], body: ByteBuffer(string: body))
            #expect(spaced.json["allowed"] as? Bool == true)
        }
        #expect(!harness.logs.all.contains { $0.contains(Harness.token) || $0.contains(Harness.secondToken) })
    }

    @Test func tokensAreReadOnePerLine() throws {
        let tokens = try BearerTokens(fileContents: Data("\n  alpha  \r\nbeta\n\n".utf8))
        #expect(tokens?.count == 2)
        #expect(tokens?.accepts("alpha") == "token-2")
        #expect(tokens?.accepts("beta") == "token-3")
        #expect(tokens?.accepts("alph") == nil)
        #expect(tokens?.accepts("") == nil)
        #expect(try BearerTokens(fileContents: Data("\n \n".utf8)) == nil)
        #expect("\(tokens!)" == "BearerTokens(2 tokens, redacted)")
        let secrets = WebhookSecrets(fileContents: [Data("s3cret\n".utf8), Data("other\r\n".utf8)])
        #expect(secrets?.count == 2)
        #expect(!"\(secrets!)".contains("s3cret"))
        #expect(WebhookSecrets(fileContents: [Data("\n".utf8)]) == nil)
    }

    @Test func aWebhookSignedByTheOneSignerVerifies() throws {
        let now = Date(timeIntervalSince1970: 1_700_000_000)
        let body = Array(#"{"id":"evt-1"}"#.utf8)
        let secrets = try #require(WebhookSecrets([Array("s3cret".utf8)]))
        let signer = TetherSignature(secret: Array("s3cret".utf8))
        let t = TetherSignature.timestamp(now)
        let header = TetherSignature.header(timestamp: t, v1: [signer.v1(timestamp: String(t), body: body)])
        #expect(header == WebhookSignature.header(body: body, secrets: [Array("s3cret".utf8)], time: now))
        try WebhookSignature.verify(header: header, body: body, secrets: secrets, now: now, tolerance: .seconds(300))
        #expect(throws: WebhookSignature.Failure.mismatch(scheme: .v1, signatures: 1)) {
            try WebhookSignature.verify(header: header, body: body + [0x20], secrets: secrets, now: now, tolerance: .seconds(300))
        }
        let earlier = header.replacingOccurrences(of: "t=\(t)", with: "t=\(t - 1)")
        #expect(throws: WebhookSignature.Failure.mismatch(scheme: .v1, signatures: 1)) {
            try WebhookSignature.verify(header: earlier, body: body, secrets: secrets, now: now, tolerance: .seconds(300))
        }
    }

    @Test(arguments: [
        (#"{"subject":"alice","agent":"support-copilot","scope":"tickets:read""#, "$", "the body is not valid JSON"),
        (#"{"subject":"alice","agent":"support-copilot","scope":"tickets:read"}"#, "$.resource", "is required"),
        (#"{"subject":"alice","agent":7,"scope":"tickets:read","resource":"r"}"#, "$.agent", "expected a string"),
        (#"{"subject":"","agent":"support-copilot","scope":"tickets:read","resource":"r"}"#, "$.subject", "must not be empty"),
        (#"{"subject":null,"agent":"support-copilot","scope":"tickets:read","resource":"r"}"#, "$.subject", "must not be null"),
    ])
    func aMalformedRequestIsA400NamingTheField(_ body: String, _ path: String, _ detail: String) async throws {
        let harness = try await Self.world()
        try await harness.application.test(.router) { client in
            let response = try await Check.post(client, body)
            #expect(response.status == .badRequest)
            #expect(response.json["error"] as? String == "invalid_request")
            #expect(response.json["path"] as? String == path)
            #expect((response.json["detail"] as? String)?.contains(detail) == true)
        }
    }

    @Test func aBodyLargerThanTheLimitIsA413() async throws {
        let harness = try await Harness(maxBodyBytes: 256)
        try await harness.application.test(.router) { client in
            let response = try await Check.post(client, Check.body("alice", "support-copilot", "tickets:read", String(repeating: "r", count: 300)))
            #expect(response.status == .contentTooLarge)
            #expect(response.json["error"] as? String == "payload_too_large")
        }
    }

    @Test func theEndpointIsAbsentWithoutATokenFile() async throws {
        let harness = try await Harness(tokens: nil)
        try await harness.application.test(.router) { client in
            let response = try await Check.post(client, Check.body("alice", "support-copilot", "tickets:read", "zendesk:queue/Support"))
            #expect(response.status == .notFound)
            #expect(response.json["error"] as? String == "not_found")
        }
    }
}

/// The check endpoint over a real socket.
@Suite struct CheckLiveTests {
    @Test func aCheckOverARealSocket() async throws {
        let harness = try await CheckTests.world()
        try await harness.application.test(.live) { client in
            let allowed = try await Check.post(client, "alice", "support-copilot", "tickets:read", "zendesk:queue/Support")
            #expect(allowed.status == .ok)
            #expect(allowed.json["allowed"] as? Bool == true)
            let unauthorised = try await Check.post(client, Check.body("alice", "support-copilot", "tickets:read", "zendesk:queue/Support"), token: "nope")
            #expect(unauthorised.status == .unauthorized)
            #expect(unauthorised.headers[.wwwAuthenticate] != nil)
        }
    }

    /// A question nested a million deep within the body limit: a 400, and the next check is
    /// answered (the question's reader once recursed into it until the stack ran out).
    @Test func aBodyNestedAMillionDeepIsA400() async throws {
        let harness = try await CheckTests.world(maxBodyBytes: 2_100_000)
        let depth = 1_000_000
        let body = #"{"subject":"alice","agent":"support-copilot","scope":"tickets:read","resource":"r","t":"#
            + String(repeating: "[", count: depth) + String(repeating: "]", count: depth) + "}"
        try await harness.application.test(.live) { client in
            let refused = try await Check.post(client, body)
            #expect(refused.status == .badRequest)
            #expect(refused.json["path"] as? String == "$")
            let allowed = try await Check.post(client, "alice", "support-copilot", "tickets:read", "zendesk:queue/Support")
            #expect(allowed.json["allowed"] as? Bool == true)
        }
    }

    /// Read your revocation: 200 tasks check alice over 8 real connections while her leaver
    /// lands. Every check sent after the leaver's 200 was received is denied.
    @Test func noCheckSentAfterTheLeaversAnswerIsAllowed() async throws {
        let harness = try await CheckTests.world()
        try await harness.application.test(.live) { client in
            let port = try #require(client.port)
            let connections = (0..<8).map { _ in TestClient(host: "127.0.0.1", port: port) }
            for connection in connections { connection.connect() }

            let race = Race()
            let body = Check.body("alice", "support-copilot", "tickets:read", "zendesk:queue/Support")

            let observations = try await withThrowingTaskGroup(of: [Observation].self) { group in
                for task in 0..<200 {
                    let connection = connections[task % connections.count]
                    group.addTask {
                        var seen: [Observation] = []
                        var afterLeaver = 0
                        // Each task keeps checking until it has made several checks after the leaver's answer.
                        while !race.stopped, afterLeaver < 3 {
                            let sent = ContinuousClock.now
                            let response = try await connection.execute(TestClient.Request(
                                "/v1/check", method: .post, authority: "localhost",
                                headers: [.authorization: "Bearer \(Harness.token)", .contentType: "application/json"],
                                body: ByteBuffer(string: body)))
                            let json = (try? JSONSerialization.jsonObject(with: Data((response.body ?? ByteBuffer()).readableBytesView))) as? [String: Any]
                            seen.append(Observation(sent: sent, allowed: json?["allowed"] as? Bool ?? false))
                            if race.leaverAnswered != nil { afterLeaver += 1 }
                        }
                        return seen
                    }
                }
                group.addTask {
                    try await Task.sleep(for: .milliseconds(150))
                    let leaver = try await HR.post(
                        client, harness, HR.body(id: "evt-2", type: "leaver", occurredAt: "2026-11-18T10:00:00Z", active: false))
                    let answered = ContinuousClock.now
                    race.leaverAnswered = answered
                    #expect(leaver.answer == #"{"status":"applied","revoked":2}"#)
                    return []
                }
                group.addTask {
                    try? await Task.sleep(for: .seconds(20))  // a safety net: never hang the suite
                    race.stopped = true
                    return []
                }
                var all: [Observation] = []
                var finished = 0
                for try await seen in group {
                    all += seen
                    finished += 1
                    if finished == 201 { group.cancelAll() }  // checkers and the leaver are done
                }
                return all
            }
            for connection in connections { try await connection.shutdown() }

            let answered = try #require(race.leaverAnswered)
            let before = observations.filter { $0.sent < answered }
            let after = observations.filter { $0.sent > answered }
            #expect(before.contains { $0.allowed }, "some checks ran while alice was still active")
            #expect(after.count >= 200 * 2)
            #expect(after.filter(\.allowed).count == 0, "checks sent after the leaver's answer were allowed")
        }
    }
}

/// What the checkers of the race share: when the leaver was answered, and a stop signal.
private final class Race: Sendable {
    private let state = Mutex<(answered: ContinuousClock.Instant?, stopped: Bool)>((nil, false))

    var leaverAnswered: ContinuousClock.Instant? {
        get { state.withLock { $0.answered } }
        set { state.withLock { $0.answered = newValue } }
    }

    var stopped: Bool {
        get { state.withLock { $0.stopped } }
        set { state.withLock { $0.stopped = newValue } }
    }
}

private struct Observation: Sendable {
    var sent: ContinuousClock.Instant
    var allowed: Bool
}
