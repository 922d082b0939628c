import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTPTypes
import Testing
import TetherCore
import TetherEngine
import TetherHTTP

@testable import TetherDaemon

/// ``CheckFastPath`` on a channel of its own: which requests it answers itself, and that
/// everything else reaches the router whole and in order.
@Suite struct CheckFastPathTests {
    static let token = "check-token-fast"
    static let question = #"{"subject":"jdoe","agent":"support-copilot","scope":"tickets:read","resource":"zendesk:queue/Support"}"#

    /// A channel with the handler, an index at revision 0, and `maxBodyBytes` of room.
    static func channel(maxBodyBytes: Int = 1_024, decisions: DecisionQueue? = nil) throws -> EmbeddedChannel {
        let answerer = CheckAnswerer(
            index: CheckIndex(), access: APIAccess(checkTokens: BearerTokens([token])), maxBodyBytes: maxBodyBytes,
            decisions: decisions)
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(
            CheckFastPath(answerer: answerer, serverName: "tether", logger: Logger(label: "test")))
        return channel
    }

    static func head(
        _ method: HTTPRequest.Method = .post, _ path: String = "/v1/check", token: String? = Self.token,
        extra: HTTPFields = [:]
    ) -> HTTPRequestPart {
        var fields = extra
        if let token { fields[.authorization] = "Bearer \(token)" }
        return .head(HTTPRequest(method: method, scheme: nil, authority: "x", path: path, headerFields: fields))
    }

    static func send(_ channel: EmbeddedChannel, _ parts: HTTPRequestPart...) throws {
        for part in parts { try channel.writeInbound(part) }
    }

    static func send(_ channel: EmbeddedChannel, check body: String, token: String? = Self.token, extra: HTTPFields = [:]) throws {
        try send(channel, head(token: token, extra: extra), .body(ByteBuffer(string: body)), .end(nil))
    }

    /// What reached the router, in order: "head POST /v1/check", "body N", "end".
    static func routed(_ channel: EmbeddedChannel) throws -> [String] {
        var parts: [String] = []
        while let part = try channel.readInbound(as: HTTPRequestPart.self) {
            switch part {
            case .head(let head): parts.append("head \(head.method.rawValue) \(head.path ?? "")")
            case .body(let body): parts.append("body \(body.readableBytes)")
            case .end: parts.append("end")
            }
        }
        return parts
    }

    /// The answer the handler wrote, if any: its head and body.
    static func answer(_ channel: EmbeddedChannel) throws -> (HTTPResponse, String)? {
        guard case .head(let head) = try channel.readOutbound(as: HTTPResponsePart.self) else { return nil }
        guard case .body(let body) = try channel.readOutbound(as: HTTPResponsePart.self) else {
            Issue.record("an answer without a body")
            return nil
        }
        guard case .end = try channel.readOutbound(as: HTTPResponsePart.self) else {
            Issue.record("an answer without an end")
            return nil
        }
        return (head, String(buffer: body))
    }

    /// The router's answer to one request, written through the handler as Hummingbird writes it.
    static func routerAnswers(_ channel: EmbeddedChannel, status: HTTPResponse.Status = .ok) throws {
        try channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: status)))
        try channel.writeOutbound(HTTPResponsePart.end(nil))
        _ = try channel.readOutbound(as: HTTPResponsePart.self)
        _ = try channel.readOutbound(as: HTTPResponsePart.self)
    }

    @Test func aWellFormedCheckIsAnsweredWithoutTheRouterAndRecorded() throws {
        let decisions = DecisionQueue(capacity: 16)
        let channel = try Self.channel(decisions: decisions)
        try Self.send(channel, check: Self.question)

        #expect(try Self.routed(channel) == [])
        let (head, body) = try #require(try Self.answer(channel))
        #expect(head.status == .ok)
        #expect(head.headerFields[.contentType] == "application/json")
        #expect(head.headerFields[.contentLength] == String(body.utf8.count))
        #expect(head.headerFields[.tetherRevision] == "0")
        #expect(head.headerFields[.server] == "tether")
        #expect(head.headerFields[.date]?.hasSuffix(" GMT") == true)
        let fields = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
        #expect(fields["allowed"] as? Bool == false)
        let id = try #require(fields["decision"] as? String)
        let recorded = decisions.takeAll()
        #expect(recorded.map(\.id) == [id])
        #expect(recorded.first?.caller == "token-1")
        #expect(recorded.first?.subject == "jdoe")
    }

    @Test func everythingItDoesNotAnswerReachesTheRouterWholeAndInOrder() throws {
        let channel = try Self.channel()
        // A refusal: the router answers 401 with its error and WWW-Authenticate.
        try Self.send(channel, check: Self.question, token: "wrong")
        #expect(try Self.routed(channel) == ["head POST /v1/check", "body \(Self.question.utf8.count)", "end"])
        try Self.routerAnswers(channel, status: .unauthorized)
        // A malformed question, an empty field, a revision not reached, other paths and methods,
        // a connection to close, a body announced with Expect: the router's.
        for body in ["{", #"{"subject":"","agent":"a","scope":"s","resource":"r"}"#,
                     #"{"subject":"jdoe","agent":"a","scope":"s","resource":"r","atLeast":7}"#] {
            try Self.send(channel, check: body)
            #expect(try Self.routed(channel) == ["head POST /v1/check", "body \(body.utf8.count)", "end"], "\(body)")
            try Self.routerAnswers(channel)
        }
        for (head, expected) in [
            (Self.head(.post, "/v1/check?x=1"), "head POST /v1/check?x=1"), (Self.head(.get, "/v1/check"), "head GET /v1/check"),
            (Self.head(extra: [.connection: "close"]), "head POST /v1/check"),
            (Self.head(extra: [.expect: "100-continue"]), "head POST /v1/check"),
        ] {
            try Self.send(channel, head, .body(ByteBuffer(string: Self.question)), .end(nil))
            #expect(try Self.routed(channel) == [expected, "body \(Self.question.utf8.count)", "end"])
            try Self.routerAnswers(channel)
        }
        #expect(try Self.answer(channel) == nil)
    }

    @Test func aBodyPastTheLimitIsHandedOverAsItArrivesForTheRoutersRefusal() throws {
        let channel = try Self.channel(maxBodyBytes: 64)
        let chunk = String(repeating: " ", count: 40)
        try Self.send(channel, Self.head(), .body(ByteBuffer(string: chunk)))
        #expect(try Self.routed(channel) == [])
        try Self.send(channel, .body(ByteBuffer(string: chunk)))
        #expect(try Self.routed(channel) == ["head POST /v1/check", "body 80"])
        try Self.send(channel, .body(ByteBuffer(string: chunk)), .end(nil))
        #expect(try Self.routed(channel) == ["body 40", "end"])
        #expect(try Self.answer(channel) == nil)
    }

    @Test func checksPipelinedBehindARoutedRequestWaitForItsAnswer() throws {
        let channel = try Self.channel()
        // A request for the router, then two checks before its answer: answering them first
        // would put their answers ahead of its, so they go to the router too.
        try Self.send(channel, Self.head(.get, "/healthz", token: nil), .end(nil))
        try Self.send(channel, check: Self.question)
        try Self.send(channel, check: Self.question)
        #expect(try Self.routed(channel) == [
            "head GET /healthz", "end", "head POST /v1/check", "body \(Self.question.utf8.count)", "end",
            "head POST /v1/check", "body \(Self.question.utf8.count)", "end",
        ])
        #expect(try Self.answer(channel) == nil)
        for _ in 0..<3 { try Self.routerAnswers(channel) }
        // Every routed request answered: the next check is the handler's again.
        try Self.send(channel, check: Self.question)
        #expect(try Self.routed(channel) == [])
        #expect(try Self.answer(channel)?.0.status == .ok)
    }

    @Test func theDateHeaderIsTheIMFFixdateOfTheSecond() {
        #expect(HTTPDate.format(0) == "Thu, 01 Jan 1970 00:00:00 GMT")
        #expect(HTTPDate.format(1_796_532_245) == "Sun, 06 Dec 2026 04:44:05 GMT")
    }
}

/// The daemon's listener with ``CheckFastPath`` in it: the checks it answers and those the
/// router answers look the same to a client, and pipelined requests are answered in order.
@Suite(.serialized) struct CheckFastPathDaemonTests {
    @Test func pipelinedRequestsAreAnsweredInOrderAndBothPathsAnswerAlike() async throws {
        try await InProcessDaemon.run(config: DecisionLogTests.config(), folder: try DecisionLogTests.folder()) { daemon in
            try await DecisionLogTests.join(daemon, [("jdoe", 1001)])
            let question = #"{"agent":"support-copilot","subject":"jdoe","scope":"tickets:read","resource":"zendesk:queue/Support"}"#
            func check(token: String = "s3cret-eu", extra: String = "") -> String {
                "POST /v1/check HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\nContent-Type: application/json\r\n\(extra)"
                    + "Content-Length: \(question.utf8.count)\r\n\r\n\(question)"
            }
            // One write: a check the listener answers itself, a request for the router, then
            // checks behind it (a refusal, one with a Connection header, a plain one).
            let connection = try RawConnection(port: daemon.port)
            #expect(connection.send(
                check() + "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" + check(token: "wrong")
                    + check(extra: "Connection: keep-alive\r\n") + check()))
            let answers = await connection.answers(5, within: 10)
            #expect(answers.map(\.status) == [200, 200, 401, 200, 200])
            guard answers.count == 5 else { return }
            #expect(answers[2].body.contains("the bearer token is not accepted"))

            // The first check was answered by the listener, the fourth by the router: the
            // same headers and the same answer, under a decision id of its own.
            let fast = answers[0]
            let routed = answers[3]
            #expect(Set(fast.headers.keys) == Set(routed.headers.keys))
            #expect(Set(fast.headers.keys).isSuperset(of: ["content-type", "content-length", "tether-revision", "date", "server"]))
            for name in ["content-type", "tether-revision", "server"] { #expect(fast.headers[name] == routed.headers[name], "\(name)") }
            func fields(_ answer: RawConnection.Answer) throws -> [String: String] {
                let object = try #require(try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any])
                return object.mapValues { "\($0)" }
            }
            var fastFields = try fields(fast)
            var routedFields = try fields(routed)
            #expect(fastFields["allowed"] == "1", "jdoe may read the queue: \(fast.body)")
            #expect(fastFields.removeValue(forKey: "decision") != routedFields.removeValue(forKey: "decision"))
            #expect(fastFields == routedFields)

            // Every answered check is in the decision log, whichever path answered it.
            let log = daemon.services.decisionLog.store
            #expect(try await eventually { try await log.count() == 3 }, "the three checks answered are stored")
        }
    }
}
