import Logging
import NIOCore
import TetherHTTP

/// Answers `POST /v1/check` from a connection's bytes, ahead of every HTTP handler, for as long
/// as the connection sends nothing else.
///
/// Gateways keep a connection open and send a check before every agent action. Through the
/// HTTP handlers each one is parsed into header lists, converted to another header type,
/// passed along five handlers and its answer back along them in three parts; here the request
/// is read in place (``CheckWireRequest``), its caller taken from the token
/// (``CheckAnswerer/caller(authorization:)``, once per connection while the token and the
/// token set stay the same), decided (``CheckAnswerer/answerAtOnce(caller:body:logger:)``)
/// and answered with one buffer, and the answers to checks that arrived together go out in
/// one write. That takes a third to a half off what a check costs the daemon.
///
/// The first request it does not answer, whatever the reason, ends its part: it inserts the
/// connection-state handler it stood in for, hands that request's bytes and everything after
/// them to the HTTP decoder, and leaves the pipeline, so from then on the connection is served
/// as any other (``CheckFastPath`` still answers its checks). Its own answers have all been
/// written by then, so answers keep the order of the requests.
///
/// While it serves a connection it does what the connection-state handler would: a graceful
/// shutdown closes the connection once no request is half read. A request is held until its
/// last byte, within the limits of ``CheckWireRequest``; ``RequestDeadlineHandler`` closes a
/// connection that has not completed a request within the request timeout of the last answer,
/// which also closes connections left idle that long. Reading pauses while the client does not
/// read its answers.
final class CheckWirePath: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let answerer: CheckAnswerer
    private let serverName: String?
    private let logger: Logger
    /// Told when each answer is written, so its deadline runs from there.
    private let deadline: RequestDeadlineHandler
    /// Builds the connection-state handler put in before ``CheckFastPath`` at the hand-over.
    private let connectionState: () -> any ChannelHandler
    private let anchor: any ChannelHandler
    /// The start of a request not yet whole.
    private var held: ByteBuffer?
    /// A read asked for while the client was not reading its answers.
    private var readPending = false
    private var quiescing = false
    /// The last `Authorization` value this connection presented that was accepted, its
    /// caller, and the tokens' generation then. A gateway sends the same token with every
    /// check: its digest is worked out again only when the value or the tokens change.
    private var accepted: (header: [UInt8], tokens: UInt64, caller: String)?
    private var handedOver = false
    /// Where each answer's body is written before its head.
    private var body = ByteBuffer()

    /// - Parameters:
    ///   - anchor: the handler the connection-state handler goes in front of at the hand-over.
    init(
        answerer: CheckAnswerer, serverName: String?, logger: Logger, deadline: RequestDeadlineHandler,
        connectionState: @escaping () -> any ChannelHandler, anchor: any ChannelHandler
    ) {
        self.answerer = answerer
        self.serverName = serverName
        self.logger = logger
        self.deadline = deadline
        self.connectionState = connectionState
        self.anchor = anchor
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if var held = held.take() {
            held.writeBuffer(&bytes)
            bytes = held
        }
        var answered = false
        // The bytes from the first request not answered here on, if any: the HTTP decoder's.
        var rest: ByteBuffer?
        reading: while bytes.readableBytes > 0 {
            let outcome = bytes.withUnsafeReadableBytes { view in
                CheckWireRequest.read(view, from: 0, maxBodyBytes: answerer.maxBodyBytes)
            }
            switch outcome {
            case .incomplete:
                held = bytes
                break reading
            case .other:
                rest = bytes
                break reading
            case .check(let authorization, let body, let end):
                guard let caller = caller(bytes, authorization),
                    let slice = bytes.getSlice(at: bytes.readerIndex + body.lowerBound, length: body.count),
                    let answer = answerer.answerAtOnce(caller: caller, body: slice, logger: logger)
                else {
                    rest = bytes
                    break reading
                }
                context.write(wrapOutboundOut(encode(answer, allocator: context.channel.allocator)), promise: nil)
                deadline.answered()
                answered = true
                bytes.moveReaderIndex(forwardBy: end)
            }
        }
        // Every answer out before anything is handed over, so answers keep request order.
        if answered { context.flush() }
        if let rest {
            handOver(context, rest)
        } else if quiescing && held == nil {
            context.close(promise: nil)
        }
    }

    /// The caller the `Authorization` value at `range` of `bytes` presents; nil when none is
    /// accepted.
    private func caller(_ bytes: ByteBuffer, _ range: Range<Int>?) -> String? {
        guard let range else { return nil }
        if let accepted, answerer.tokensUnchanged(since: accepted.tokens),
            bytes.withUnsafeReadableBytes({ $0[range].elementsEqual(accepted.header) })
        {
            return accepted.caller
        }
        let header = bytes.withUnsafeReadableBytes { Array($0[range]) }
        guard let (caller, tokens) = answerer.caller(authorization: String(decoding: header, as: UTF8.self)) else { return nil }
        accepted = (header, tokens, caller)
        return caller
    }

    /// Everything from `bytes` on goes to the HTTP decoder, the connection-state handler goes
    /// in, and this handler leaves.
    private func handOver(_ context: ChannelHandlerContext, _ bytes: ByteBuffer) {
        handedOver = true
        let pipeline = context.pipeline.syncOperations
        do {
            try pipeline.addHandler(connectionState(), position: .before(anchor))
        } catch {
            logger.error("a connection could not be handed to the HTTP handlers and is closed", metadata: ["error": "\(error)"])
            context.close(promise: nil)
            return
        }
        context.fireChannelRead(wrapInboundOut(bytes))
        // A shutdown asked for while this handler served the connection is the new handler's,
        // once it has seen the request begin: it closes the connection after that answer.
        if quiescing { context.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent()) }
        pipeline.removeHandler(context: context, promise: nil)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if readPending {
            readPending = false
            context.read()
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is ChannelShouldQuiesceEvent, !handedOver else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        quiescing = true
        if held == nil { context.close(promise: nil) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        held = nil
        context.fireChannelInactive()
    }

    func read(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            context.read()
        } else {
            readPending = true
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable && readPending {
            readPending = false
            context.read()
        }
        context.fireChannelWritabilityChanged()
    }

    /// A 200 with the headers the router's answer has, and the body, in one buffer.
    private func encode(_ answer: CheckAnswerer.Answer, allocator: ByteBufferAllocator) -> ByteBuffer {
        // The body first, into a buffer the connection keeps: its length goes in the head.
        body.clear()
        answer.write(into: &body)
        let date = HTTPDate.now()
        var buffer = allocator.buffer(capacity: 160 + body.readableBytes)
        buffer.writeStaticString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ")
        buffer.writeString(String(body.readableBytes))
        buffer.writeStaticString("\r\nTether-Revision: ")
        buffer.writeString(String(answer.revision))
        buffer.writeStaticString("\r\nDate: ")
        buffer.writeString(date)
        if let serverName {
            buffer.writeStaticString("\r\nServer: ")
            buffer.writeString(serverName)
        }
        buffer.writeStaticString("\r\n\r\n")
        buffer.writeImmutableBuffer(body)
        return buffer
    }
}

extension Optional {
    /// The value, leaving nil behind.
    fileprivate mutating func take() -> Wrapped? {
        defer { self = nil }
        return self
    }
}
