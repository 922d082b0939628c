import Foundation
import Logging
import NIOCore
import NIOEmbedded
import Testing
import TetherCore
import TetherEngine
import TetherHTTP

@testable import TetherDaemon

/// ``CheckWirePath`` on a channel of its own, in front of a stand-in for the HTTP handlers:
/// the checks it answers from the bytes, and the hand-over of everything else.
@Suite struct CheckWirePathTests {
    static let token = "check-token-wire"
    static let question = #"{"subject":"jdoe","agent":"support-copilot","scope":"tickets:read","resource":"zendesk:queue/Support"}"#

    static func check(token: String = Self.token, body: String = Self.question) -> String {
        "POST /v1/check HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \(token)\r\nContent-Type: application/json\r\n"
            + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }

    /// Stands in for the HTTP handlers: keeps the bytes handed over.
    final class Decoder: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = ByteBuffer
        var received = ""
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            received += String(buffer: unwrapInboundIn(data))
        }
    }

    /// The handler put in at the hand-over.
    final class ConnectionState: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = ByteBuffer
        var events: [String] = []
        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            events.append("\(type(of: event))")
        }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) { context.fireChannelRead(data) }
    }

    /// Counts the reads asked of the socket.
    final class Reads: ChannelOutboundHandler {
        typealias OutboundIn = ByteBuffer
        var count = 0
        func read(context: ChannelHandlerContext) {
            count += 1
            context.read()
        }
    }

    struct Connection {
        let channel: EmbeddedChannel
        let decoder: Decoder
        let state: ConnectionState
        let reads: Reads
        let handler: CheckWirePath

        init(
            decisions: DecisionQueue? = nil, maxBodyBytes: Int = 1_024,
            access: APIAccess = APIAccess(checkTokens: BearerTokens([CheckWirePathTests.token]))
        ) throws {
            let answerer = CheckAnswerer(index: CheckIndex(), access: access, maxBodyBytes: maxBodyBytes, decisions: decisions)
            channel = EmbeddedChannel()
            decoder = Decoder()
            let state = ConnectionState()
            self.state = state
            reads = Reads()
            handler = CheckWirePath(
                answerer: answerer, serverName: "tether", logger: Logger(label: "test"),
                deadline: RequestDeadlineHandler(timeout: .seconds(30)), connectionState: { state }, anchor: decoder)
            try channel.pipeline.syncOperations.addHandlers([reads, handler, decoder])
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8080)).wait()
        }

        func send(_ text: String) throws {
            try channel.writeInbound(ByteBuffer(string: text))
        }

        /// Each buffer written, as text.
        func written() throws -> [String] {
            var buffers: [String] = []
            while let buffer = try channel.readOutbound(as: ByteBuffer.self) { buffers.append(String(buffer: buffer)) }
            return buffers
        }

        var stillInFront: Bool { (try? channel.pipeline.syncOperations.context(handler: handler)) != nil }
        var stateInserted: Bool { (try? channel.pipeline.syncOperations.context(handler: state)) != nil }
    }

    /// The status line, the headers by lowercased name, and the body of one answer.
    static func parse(_ answer: String) throws -> (status: String, headers: [String: String], body: String) {
        let parts = answer.components(separatedBy: "\r\n\r\n")
        try #require(parts.count == 2, "\(answer.debugDescription)")
        var lines = parts[0].components(separatedBy: "\r\n")
        let status = lines.removeFirst()
        var headers: [String: String] = [:]
        for line in lines {
            let colon = try #require(line.firstIndex(of: ":"))
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return (status, headers, parts[1])
    }

    @Test func checksThatArriveTogetherAreAnsweredInOrderAndRecorded() throws {
        let decisions = DecisionQueue(capacity: 16)
        let connection = try Connection(decisions: decisions)
        try connection.send(Self.check() + Self.check(body: #"{"subject":"kim","agent":"a","scope":"s","resource":"r"}"#))

        let answers = try connection.written()
        #expect(answers.count == 2)
        #expect(connection.decoder.received == "")
        let recorded = decisions.takeAll()
        #expect(recorded.map(\.subject) == ["jdoe", "kim"])
        for (answer, decision) in zip(answers, recorded) {
            let (status, headers, body) = try Self.parse(answer)
            #expect(status == "HTTP/1.1 200 OK")
            #expect(headers["content-type"] == "application/json")
            #expect(headers["content-length"] == String(body.utf8.count))
            #expect(headers["tether-revision"] == "0")
            #expect(headers["server"] == "tether")
            #expect(headers["date"]?.hasSuffix(" GMT") == true)
            let fields = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
            #expect(fields["allowed"] as? Bool == false)
            #expect(fields["decision"] as? String == decision.id)
        }
        #expect(connection.stillInFront)
        #expect(!connection.stateInserted)
    }

    @Test func aCheckThatArrivesByteByByteIsHeldUntilItsLastAndAnswered() throws {
        let connection = try Connection()
        let text = Self.check()
        for byte in text.utf8.dropLast() {
            try connection.send(String(decoding: [byte], as: UTF8.self))
            #expect(try connection.written() == [])
        }
        try connection.send(String(decoding: [text.utf8.last!], as: UTF8.self))
        #expect(try connection.written().count == 1)
        #expect(connection.decoder.received == "")
        #expect(connection.stillInFront)
    }

    @Test(arguments: [
        "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", check(token: "wrong"), check(body: #"{"subject":""}"#),
        check(body: #"{"subject":"jdoe","agent":"a","scope":"s","resource":"r","atLeast":7}"#),
        "POST /v1/check HTTP/1.1\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}",
    ])
    func theFirstRequestItDoesNotAnswerIsHandedOverWithEverythingAfterIt(_ other: String) throws {
        let connection = try Connection()
        try connection.send(Self.check() + other + Self.check())

        // The first check answered; the other request and the check behind it handed over whole.
        #expect(try connection.written().count == 1)
        #expect(connection.decoder.received == other + Self.check())
        #expect(!connection.stillInFront)
        #expect(connection.stateInserted)
        // Later bytes go straight to the HTTP handlers.
        try connection.send(Self.check())
        #expect(connection.decoder.received == other + Self.check() + Self.check())
        #expect(try connection.written() == [])
    }

    @Test func aTokenIsJudgedAgainWhenItChangesOrTheTokensAreReloaded() throws {
        let access = APIAccess(checkTokens: BearerTokens([Self.token, "second-token"]))
        let decisions = DecisionQueue(capacity: 16)
        let connection = try Connection(decisions: decisions, access: access)
        // Each accepted token answered under its own name, however they alternate.
        try connection.send(Self.check() + Self.check(token: "second-token") + Self.check())
        #expect(try connection.written().count == 3)
        #expect(decisions.takeAll().map(\.caller) == ["token-1", "token-2", "token-1"])
        // A reload that keeps the token: still accepted.
        access.update(hr: nil, checkTokens: BearerTokens([Self.token]))
        try connection.send(Self.check())
        #expect(try connection.written().count == 1)
        // A reload that takes it away: the next check on the same connection is not answered
        // here but handed over, for the router's 401.
        access.update(hr: nil, checkTokens: BearerTokens(["rotated-token"]))
        try connection.send(Self.check())
        #expect(try connection.written() == [])
        #expect(connection.decoder.received == Self.check())
    }

    @Test func aHeldStartThatTurnsOutNotToBeACheckIsHandedOverWhole() throws {
        let connection = try Connection()
        try connection.send("POST /v1/check HTTP/1.1\r\nContent-Length: 2")
        #expect(connection.decoder.received == "")
        try connection.send("\r\nTransfer-Encoding: chunked\r\n\r\n")
        #expect(connection.decoder.received == "POST /v1/check HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n")
    }

    @Test func aShutdownClosesAnIdleConnectionAndOneHalfReadAfterItsAnswer() throws {
        let idle = try Connection()
        #expect(idle.channel.isActive)
        try idle.send(Self.check())
        _ = try idle.written()
        idle.channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(!idle.channel.isActive)

        let reading = try Connection()
        let text = Self.check()
        try reading.send(String(text.prefix(40)))
        reading.channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(reading.channel.isActive, "a check half read is answered first")
        try reading.send(String(text.dropFirst(40)))
        #expect(try reading.written().count == 1)
        #expect(!reading.channel.isActive)
    }

    @Test func aShutdownAskedForBeforeTheHandOverReachesTheConnectionStateHandler() throws {
        let connection = try Connection()
        try connection.send("POST /v1/check HTTP/1.1\r\n")
        connection.channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        try connection.send("Connection: close\r\n\r\n")
        #expect(connection.state.events == ["ChannelShouldQuiesceEvent"])
    }

    @Test func readingPausesWhileTheClientDoesNotReadItsAnswers() throws {
        let connection = try Connection()
        connection.channel.read()
        #expect(connection.reads.count == 1)
        connection.channel.isWritable = false
        connection.channel.read()
        #expect(connection.reads.count == 1, "no read while answers wait")
        connection.channel.isWritable = true
        connection.channel.pipeline.fireChannelWritabilityChanged()
        #expect(connection.reads.count == 2, "the read held is asked for once writable")
    }
}
