import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// Where a target listens: scheme, host and port, and the path of its grant collection.
struct HTTPEndpoint: Sendable, Hashable {
    var tls: Bool
    var host: String
    var port: Int
    /// The collection's path without a trailing slash (`/grants`, or empty for the root).
    var basePath: String
    /// The collection URL's query, if any, without `?`.
    var query: String?

    init?(_ text: String) {
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
            scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty,
            components.user == nil, components.fragment == nil
        else { return nil }
        tls = scheme == "https"
        self.host = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        port = components.port ?? (tls ? 443 : 80)
        var path = components.percentEncodedPath
        while path.hasSuffix("/") { path.removeLast() }
        basePath = path
        query = components.percentEncodedQuery
    }

    /// The `Host` header: the host, with the port unless it is the scheme's default.
    var hostHeader: String {
        let name = host.contains(":") ? "[\(host)]" : host
        return port == (tls ? 443 : 80) ? name : "\(name):\(port)"
    }

    /// Whether `other` is the same origin: same scheme, host and port.
    func sameOrigin(_ other: HTTPEndpoint) -> Bool {
        tls == other.tls && host.lowercased() == other.host.lowercased() && port == other.port
    }

    /// The collection itself, with its query: what `GET {url}` asks.
    var collectionTarget: String {
        let path = basePath.isEmpty ? "/" : basePath
        return query.map { "\(path)?\($0)" } ?? path
    }
}

/// One HTTP/1.1 request as Tether sends it: the exact bytes of the body are what is signed.
struct HTTPRequest: Sendable {
    var method: HTTPMethod
    /// Path and query, as sent on the request line.
    var target: String
    var headers: [(String, String)]
    var body: [UInt8]
}

/// One HTTP answer.
struct HTTPResponse: Sendable {
    var status: Int
    var headers: HTTPHeaders
    var body: [UInt8]
    /// Whether the server will close the connection after this answer.
    var closes: Bool
}

/// Why an exchange failed below HTTP.
enum HTTPTransportFailure: Error, Sendable, CustomStringConvertible {
    case connect(any Error)
    case timedOut
    case closed
    case io(any Error)
    case tooLarge(Int)

    /// Whether a kept-alive connection may simply have been closed by the server while idle:
    /// then the request is sent again once on a new connection.
    var mayBeStaleConnection: Bool {
        switch self {
        case .closed, .io: true
        case .connect, .timedOut, .tooLarge: false
        }
    }

    var description: String {
        switch self {
        // A ConnectionFailure names the address: "cannot connect to 127.0.0.1:9400: connection refused".
        case .connect(let error): error is ConnectionFailure ? "\(error)" : "cannot connect: \(ConnectionFailure.cause(of: error))"
        case .timedOut: "no complete answer in time"
        case .closed: "connection closed before the answer was complete"
        case .io(let error): "connection failed: \(ConnectionFailure.cause(of: error))"
        case .tooLarge(let limit): "answer larger than \(limit) bytes"
        }
    }
}

/// A keep-alive HTTP/1.1 connection over NIO, one exchange at a time.
///
/// NIO is the runtime Tether already serves HTTP on: no second networking stack, the signed
/// bytes are exactly the bytes sent, redirects are never followed, and every failure is
/// classified (refused, reset, timed out) for the retry decision.
final class HTTPConnection: Sendable {
    private let channel: any Channel

    private init(channel: any Channel) { self.channel = channel }

    var isActive: Bool { channel.isActive }

    /// Connects to `endpoint`, with TLS when it is `https`.
    static func connect(
        to endpoint: HTTPEndpoint, group: any EventLoopGroup, tls: NIOSSLContext?, timeout: Duration,
        maxResponseBytes: Int
    ) async throws -> HTTPConnection {
        let sniName = endpoint.isIPAddress ? nil : endpoint.host
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(TimeAmount(timeout))
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: tls, serverHostname: sniName))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ExchangeHandler(maxResponseBytes: maxResponseBytes))
                }
            }
        do {
            let channel = try await bootstrap.connect(host: endpoint.host, port: endpoint.port).get()
            return HTTPConnection(channel: channel)
        } catch {
            throw HTTPTransportFailure.connect(ConnectionFailure(host: endpoint.host, port: endpoint.port, underlying: error))
        }
    }

    /// Sends `request` and waits for the whole answer, at most `timeout`; on a timeout or
    /// cancellation the connection is closed.
    func execute(_ request: HTTPRequest, host: String, timeout: Duration) async throws -> HTTPResponse {
        var head = HTTPRequestHead(version: .http1_1, method: request.method, uri: request.target)
        head.headers.add(name: "Host", value: host)
        for (name, value) in request.headers { head.headers.add(name: name, value: value) }
        if !request.body.isEmpty || request.method == .PUT || request.method == .POST {
            head.headers.add(name: "Content-Length", value: String(request.body.count))
        }
        let promise = channel.eventLoop.makePromise(of: HTTPResponse.self)
        let exchange = Exchange(head: head, body: channel.allocator.buffer(bytes: request.body), response: promise)
        let channel = self.channel
        let timer = channel.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
            promise.fail(HTTPTransportFailure.timedOut)
            channel.close(promise: nil)
        }
        return try await withTaskCancellationHandler {
            channel.writeAndFlush(exchange).whenFailure { promise.fail(HTTPTransportFailure.io($0)) }
            defer { timer.cancel() }
            let response = try await promise.futureResult.get()
            if response.closes { channel.close(promise: nil) }
            return response
        } onCancel: {
            promise.fail(CancellationError())
            channel.close(promise: nil)
        }
    }

    func close() {
        channel.close(promise: nil)
    }
}

extension HTTPEndpoint {
    /// Whether the host is an IP literal: then no SNI is sent and the certificate must name the IP.
    var isIPAddress: Bool { (try? SocketAddress(ipAddress: host, port: 0)) != nil }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

/// A request on its way down the pipeline, with the promise its answer fulfils.
struct Exchange: Sendable {
    var head: HTTPRequestHead
    var body: ByteBuffer
    var response: EventLoopPromise<HTTPResponse>
}

/// Writes one request and gathers its answer; fails the exchange when the connection breaks.
final class ExchangeHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = Exchange
    typealias OutboundOut = HTTPClientRequestPart

    private let maxResponseBytes: Int
    private var pending: EventLoopPromise<HTTPResponse>?
    private var head: HTTPResponseHead?
    private var body: [UInt8] = []

    init(maxResponseBytes: Int) { self.maxResponseBytes = maxResponseBytes }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let exchange = unwrapOutboundIn(data)
        guard pending == nil, context.channel.isActive else {
            exchange.response.fail(HTTPTransportFailure.closed)
            promise?.fail(HTTPTransportFailure.closed)
            return
        }
        pending = exchange.response
        head = nil
        body = []
        context.write(wrapOutboundOut(.head(exchange.head)), promise: nil)
        if exchange.body.readableBytes > 0 {
            context.write(wrapOutboundOut(.body(.byteBuffer(exchange.body))), promise: nil)
        }
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let responseHead):
            // 1xx answers are interim; the real one follows.
            if responseHead.status.code >= 200 { head = responseHead }
        case .body(let buffer):
            guard head != nil else { return }
            if body.count + buffer.readableBytes > maxResponseBytes {
                fail(HTTPTransportFailure.tooLarge(maxResponseBytes))
                context.close(promise: nil)
                return
            }
            body.append(contentsOf: buffer.readableBytesView)
        case .end:
            guard let responseHead = head, let promise = pending else { return }
            pending = nil
            head = nil
            let response = HTTPResponse(
                status: Int(responseHead.status.code), headers: responseHead.headers, body: body,
                closes: !responseHead.isKeepAlive)
            body = []
            promise.succeed(response)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(HTTPTransportFailure.closed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(HTTPTransportFailure.io(error))
        context.close(promise: nil)
    }

    private func fail(_ error: HTTPTransportFailure) {
        let promise = pending
        pending = nil
        promise?.fail(error)
    }
}
