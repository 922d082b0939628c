import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import Synchronization
import TetherHTTP

/// Answers `POST /v1/check` on the connection's event loop, without the router.
///
/// Gateways ask a check before every agent action, so it is the request the daemon answers
/// most. Through the router each one costs a task, an async body stream and a hop back to the
/// event loop to write; here, a well-formed question from an accepted caller, with no revision
/// to wait for, is read, decided and answered in the read that completes it
/// (``CheckAnswerer/answerAtOnce(authorization:body:logger:)``). Everything else — another
/// path, a refusal, an error, a question that must wait, `Connection` or `Expect` headers — is
/// handed to the router as it arrived, which answers it as it answers every request.
///
/// A connection that sends only plain checks never reaches it: ``CheckWirePath`` answers
/// those from the bytes. This handler answers the checks of a connection that has sent
/// anything else, once ``CheckWirePath`` has handed it over.
///
/// HTTP/1.1 answers go out in request order: while a request handed to the router is
/// unanswered, the checks after it are handed over too. The handler sits after Hummingbird's
/// connection-state handler, which counts requests and answers for idle timeouts and graceful
/// shutdown, so it sees these answers like any other.
final class CheckFastPath: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private enum Reading {
        /// Between requests, or reading one handed to the router.
        case routing
        /// A check this handler may answer, held until its end.
        case holding(HTTPRequest, ByteBuffer?)
    }

    private let answerer: CheckAnswerer
    private let serverName: String?
    private let logger: Logger
    private var reading = Reading.routing
    /// Requests handed to the router whose answers have not ended.
    private var routed = 0

    init(answerer: CheckAnswerer, serverName: String?, logger: Logger) {
        self.answerer = answerer
        self.serverName = serverName
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch (part, reading) {
        case (.head(let head), _):
            if routed == 0 && Self.mayAnswer(head) {
                reading = .holding(head, nil)
            } else {
                routed += 1
                context.fireChannelRead(data)
            }
        case (.body(let chunk), .holding(let head, var body)):
            reading = .routing
            if body == nil { body = chunk } else { body!.writeImmutableBuffer(chunk) }
            if body!.readableBytes > answerer.maxBodyBytes {
                // The router refuses it with 413, having read the rest.
                hand(context, head, body)
            } else {
                reading = .holding(head, body)
            }
        case (.end(let trailers), .holding(let head, let body)):
            reading = .routing
            if trailers == nil,
                let answer = answerer.answerAtOnce(
                    authorization: head.headerFields[.authorization], body: body ?? ByteBuffer(), logger: logger)
            {
                write(answer, context: context)
            } else {
                hand(context, head, body)
                context.fireChannelRead(data)
            }
        case (.body, .routing), (.end, .routing):
            context.fireChannelRead(data)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { routed -= 1 }
        context.write(data, promise: promise)
    }

    /// Whether `head` may be a check this handler answers: the route's method and exact
    /// path, and none of the headers that change how a connection or its body behaves.
    static func mayAnswer(_ head: HTTPRequest) -> Bool {
        head.method == .post && head.path == "/v1/check" && head.headerFields[.connection] == nil
            && head.headerFields[.expect] == nil
    }

    /// Hands a held request to the router, as it arrived.
    private func hand(_ context: ChannelHandlerContext, _ head: HTTPRequest, _ body: ByteBuffer?) {
        routed += 1
        context.fireChannelRead(wrapInboundOut(.head(head)))
        if let body { context.fireChannelRead(wrapInboundOut(.body(body))) }
    }

    /// Writes a 200 with the headers the router's answer has.
    private func write(_ answer: CheckAnswerer.Answer, context: ChannelHandlerContext) {
        var body = context.channel.allocator.buffer(capacity: 256)
        answer.write(into: &body)
        var headers = HTTPFields()
        headers.reserveCapacity(6)
        headers[.contentType] = "application/json"
        headers[.contentLength] = String(body.readableBytes)
        headers[.tetherRevision] = String(answer.revision)
        headers[.date] = HTTPDate.now()
        if let serverName { headers[.server] = serverName }
        context.write(wrapOutboundOut(.head(HTTPResponse(status: .ok, headerFields: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}

/// Hummingbird's HTTP/1.1 channel with ``CheckWirePath`` in front of it and ``CheckFastPath``
/// after its connection-state handler, just before the requests go to the router. The
/// pipeline is built as `HTTP1Channel` builds it, with the handlers added before the async
/// channel wraps it: a handler added after could fail on a connection already closed, and the
/// async channel's writer would then be dropped unfinished, which NIO treats as a fatal error.
/// The connection-state handler goes in when ``CheckWirePath`` hands the connection over: it
/// would close a connection whose answers it never sees as idle.
struct CheckFastPathChannel: ServerChildChannel, HTTPChannelHandler {
    typealias Value = HTTP1Channel.Value

    let responder: HTTPChannelHandler.Responder
    let configuration: HTTP1Channel.Configuration
    let answerer: CheckAnswerer
    let serverName: String?
    /// How long a client has for each whole request (``RequestDeadlineHandler``).
    let requestTimeout: TimeAmount

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            var limits = NIOHTTPDecoderLimitConfiguration()
            limits.maxHeaderFieldSize = configuration.httpDecoder.maxHeaderFieldSize
            limits.maxHeaderListSize = configuration.httpDecoder.maxHeaderListSize
            limits.maxHeaderFieldCount = configuration.httpDecoder.maxHeaderFieldCount
            let pipeline = channel.pipeline.syncOperations
            let deadline = RequestDeadlineHandler(timeout: requestTimeout)
            let fastPath = CheckFastPath(answerer: answerer, serverName: serverName, logger: logger)
            let idleTimeout = configuration.idleTimeout.map { Duration($0) }
            // Ahead of the HTTP handlers: checks answered from the bytes until the connection
            // sends anything else. The connection-state handler goes in when it does.
            try pipeline.addHandler(CheckWirePath(
                answerer: answerer, serverName: serverName, logger: logger, deadline: deadline,
                connectionState: { HTTPConnectionStateHandler(idleTimeout: idleTimeout, logger: logger) }, anchor: fastPath))
            try pipeline.configureHTTPServerPipeline(
                withPipeliningAssistance: false, withErrorHandling: false, withOutboundHeaderValidation: false,
                withEncoderConfiguration: .init(), withDecoderLimitConfiguration: limits)
            try pipeline.addHandler(HTTP1ToHTTPServerCodec(secure: false))
            try pipeline.addHandlers(configuration.additionalChannelHandlers())
            try pipeline.addHandler(deadline)
            try pipeline.addHandler(fastPath)
            return try NIOAsyncChannel(wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
        }
    }

    func handle(value: Value, logger: Logger) async {
        await handleHTTP(asyncChannel: value, logger: logger)
    }
}

extension HTTPServerBuilder {
    /// HTTP/1.1 whose checks ``CheckWirePath`` and ``CheckFastPath`` answer where they can,
    /// each request whole within `requestTimeout`.
    static func http1(
        configuration: HTTP1Channel.Configuration, check: CheckAnswerer, serverName: String?, requestTimeout: TimeAmount
    ) -> HTTPServerBuilder {
        .init { responder in
            CheckFastPathChannel(
                responder: responder, configuration: configuration, answerer: check, serverName: serverName,
                requestTimeout: requestTimeout)
        }
    }
}

/// The `Date` header's value (RFC 9110 §5.6.7), made once a second.
enum HTTPDate {
    private static let cached = Mutex<(second: Int, text: String)>((-1, ""))
    private static let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    static func now() -> String {
        let second = time(nil)
        return cached.withLock { cached in
            if cached.second != second { cached = (second, format(second)) }
            return cached.text
        }
    }

    static func format(_ second: Int) -> String {
        var clock = second
        var parts = tm()
        gmtime_r(&clock, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}
