import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// Hands a write a follower received to the leader's public listener and brings its answer
/// back unchanged (SPEC §14): HR events and SCIM writes keep their single-node meaning,
/// answered once the leader committed them, whichever node the sender reached.
public struct LeaderForwarder: Sendable {
    /// The longest a forwarded request may take, leader's commit included.
    public let timeout: Duration
    /// The largest answer relayed.
    public let maxResponseBytes: Int

    public init(timeout: Duration = .seconds(30), maxResponseBytes: Int = 8 * 1_048_576) {
        self.timeout = timeout
        self.maxResponseBytes = maxResponseBytes
    }

    /// The leader's answer: status, headers (hop-by-hop ones left out) and body.
    public struct Answer: Sendable {
        public var status: Int
        public var headers: [(String, String)]
        public var body: [UInt8]
    }

    /// Why a request could not be handed over; the leader may not have received it.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// Headers that belong to one connection, never relayed.
    static let hopByHop: Set<String> = [
        "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te", "trailer", "content-length", "host",
    ]

    /// Sends `method target` with `headers` and `body` to the leader at `address`
    /// (`http://HOST:PORT`), adding `Tether-Forwarded-By: node`.
    public func forward(
        method: String, target: String, headers: [(String, String)], body: [UInt8], to address: String, from node: String
    ) async throws -> Answer {
        guard let endpoint = HTTPEndpoint(address) else { throw Failure(description: "the leader's address \(address) is not an http(s) URL") }
        var relayed = headers.filter { !Self.hopByHop.contains($0.0.lowercased()) }
        relayed.append(("Tether-Forwarded-By", node))
        relayed.append(("Connection", "close"))
        let tls = endpoint.tls ? try NIOSSLContext(configuration: .makeClientConfiguration()) : nil
        let request = HTTPRequest(method: HTTPMethod(rawValue: method), target: target, headers: relayed, body: body)
        do {
            let connection = try await HTTPConnection.connect(
                to: endpoint, group: MultiThreadedEventLoopGroup.singleton, tls: tls, timeout: .seconds(5),
                maxResponseBytes: maxResponseBytes)
            defer { connection.close() }
            let response = try await connection.execute(request, host: endpoint.hostHeader, timeout: timeout)
            let headers = response.headers.filter { !Self.hopByHop.contains($0.name.lowercased()) }.map { ($0.name, $0.value) }
            return Answer(status: response.status, headers: headers, body: response.body)
        } catch let failure as HTTPTransportFailure {
            throw Failure(description: "the leader at \(address) could not be reached: \(failure)")
        }
    }
}
