import NIOCore
import NIOHTTPTypes

/// Closes a connection whose client does not deliver a whole request — headers and body —
/// within `timeout` of the connection opening or of the previous response.
///
/// An idle timeout alone is reset by every byte, so a client trickling a request a byte at a
/// time (slowloris) could hold a connection for ever. Here the clock runs from the moment the
/// server waits for a request until that request's last byte; while the server works on a
/// request and writes its response, no clock runs. The same clock closes a connection left
/// idle that long.
///
/// Checks that ``CheckWirePath`` answers from the bytes never reach this handler: it tells
/// it of each answer (``answered()``), and the clock starts again from there.
final class RequestDeadlineHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let timeout: TimeAmount
    /// When the request waited for must have arrived whole; nil while the server works on one.
    private var deadline: NIODeadline?
    /// The one timer of the connection: armed when a wait begins and none is armed, and on
    /// firing armed again for the wait in progress, if any. A request costs no timer of its
    /// own: a check answered in 200 µs would otherwise schedule and cancel one each time.
    private var timer: Scheduled<Void>?

    init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { wait(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        wait(context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        stop()
    }

    func channelInactive(context: ChannelHandlerContext) {
        stop()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .end = unwrapInboundIn(data) { deadline = nil }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { wait(context) }
        context.write(data, promise: promise)
    }

    /// A request was answered ahead of this handler: the next must be whole within the
    /// timeout from now. The timer armed when the wait began finds the later deadline when it
    /// fires, and waits on.
    func answered() {
        deadline = NIODeadline.now() + timeout
    }

    /// The server now waits for a request: the clock runs from here.
    private func wait(_ context: ChannelHandlerContext) {
        let deadline = NIODeadline.now() + timeout
        self.deadline = deadline
        if timer == nil { arm(context, at: deadline) }
    }

    private func arm(_ context: ChannelHandlerContext, at time: NIODeadline) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: time) {
            let (handler, context) = loopBound.value
            handler.fired(context)
        }
    }

    private func fired(_ context: ChannelHandlerContext) {
        timer = nil
        guard let deadline else { return }
        if deadline <= .now() {
            context.close(promise: nil)
        } else {
            arm(context, at: deadline)
        }
    }

    private func stop() {
        timer?.cancel()
        timer = nil
        deadline = nil
    }
}
