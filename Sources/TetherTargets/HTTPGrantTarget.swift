import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import TetherConfig
import TetherCore
import TetherStore

/// An HTTP target (SPEC §6): `PUT {url}/{grantId}` with the grant as JSON to grant,
/// `DELETE {url}/{grantId}` to revoke, `GET {url}` (paged through `next`) for what it holds.
/// Every request carries `Tether-Signature`; changes also carry `Idempotency-Key`.
///
/// One actor owns one keep-alive connection and sends one request at a time; the deliverer
/// and the drift check each use their own, so neither waits for the other.
public actor HTTPGrantTarget: GrantTarget {
    /// The timeout when the configuration names none.
    public static let defaultTimeout: Duration = .seconds(10)

    /// The target's id, from its configuration.
    public nonisolated let id: String
    /// The configuration this target was built from.
    public nonisolated let configuration: TargetConfiguration
    let endpoint: HTTPEndpoint
    let signature: TargetSignature
    let timeout: Duration
    let group: any EventLoopGroup
    let tls: NIOSSLContext?
    let clock: any WallClock
    let maxResponseBytes: Int
    let maxPages: Int
    private var connection: HTTPConnection?

    /// Builds a target from its configuration.
    /// - Parameters:
    ///   - secret: the signing secret; nil reads it from `configuration.secretFile`.
    ///   - tls: the TLS settings for an `https` URL (trust roots, client certificate); the
    ///     default trusts the system's roots and verifies the host name.
    ///   - clock: the time `Tether-Signature` carries.
    ///   - maxResponseBytes: the largest answer read, per page.
    public init(
        configuration: TargetConfiguration, secret: [UInt8]? = nil,
        tls: TLSConfiguration = .makeClientConfiguration(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        clock: any WallClock = SystemWallClock(), maxResponseBytes: Int = 64 << 20, maxPages: Int = 100_000
    ) throws {
        guard let endpoint = HTTPEndpoint(configuration.url) else {
            throw TargetError(
                .configuration, target: configuration.id,
                "url '\(configuration.url)' is not an http:// or https:// URL with a host")
        }
        let secret = try secret ?? TargetSignature.readSecret(path: configuration.secretFile, target: configuration.id)
        id = configuration.id
        self.configuration = configuration
        self.endpoint = endpoint
        signature = TargetSignature(secret: secret, includesV1: configuration.signatureV1)
        timeout = configuration.timeout ?? Self.defaultTimeout
        group = eventLoopGroup
        do {
            self.tls = endpoint.tls ? try NIOSSLContext(configuration: tls) : nil
        } catch {
            throw TargetError(.configuration, target: configuration.id, "cannot set up TLS", underlying: error)
        }
        self.clock = clock
        self.maxResponseBytes = maxResponseBytes
        self.maxPages = maxPages
    }

    // MARK: Changes

    public func deliver(_ change: OutboxEntry) async -> DeliveryOutcome {
        let request = Self.request(for: change, endpoint: endpoint, signature: signature, at: clock.now())
        let line = "\(request.method) \(request.target)"
        let response: HTTPResponse
        do {
            response = try await exchange(request)
        } catch {
            return .unavailable(reason: "\(line): \(error)", retryAfter: nil)
        }
        let status = response.status
        if (200..<300).contains(status) || (status == 404 && change.operation == .delete) {
            return .delivered(status: status)
        }
        let retryAfter = response.headers.first(name: "Retry-After").flatMap { RetryAfter.parse($0, now: clock.now()) }
        let reason = "\(line): HTTP \(status)" + Self.excerpt(response.body)
        if status >= 500 || status == 408 || status == 429 {
            return .unavailable(reason: reason, retryAfter: retryAfter)
        }
        return .refused(reason: reason, retryAfter: retryAfter)
    }

    /// The request that sends `change`: the body and headers the contract in docs/targets.md names.
    static func request(for change: OutboxEntry, endpoint: HTTPEndpoint, signature: TargetSignature, at time: Date) -> HTTPRequest {
        let path = "\(endpoint.basePath)/\(change.grantID)"
        let body: [UInt8] = change.operation == .put ? Self.body(change.grant) : []
        let method: HTTPMethod = change.operation == .put ? .PUT : .DELETE
        let key = "\(change.target):\(change.id)"
        var headers = [
            ("User-Agent", "tether"),
            ("Accept", "application/json"),
            ("Idempotency-Key", key),
            ("Tether-Signature", signature.header(method: method.rawValue, target: path, idempotencyKey: key, body: body, at: time)),
        ]
        if change.operation == .put { headers.append(("Content-Type", "application/json")) }
        return HTTPRequest(method: method, target: path, headers: headers, body: body)
    }

    /// `{"agent","id","resource","scope","subject"}`: keys sorted, no spaces.
    static func body(_ grant: Grant) -> [UInt8] {
        let object: [String: String] = [
            "subject": grant.subject, "agent": grant.agent, "scope": grant.scope, "resource": grant.resource, "id": grant.id,
        ]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array((try? encoder.encode(object)) ?? Data("{}".utf8))
    }

    static func excerpt(_ body: [UInt8]) -> String {
        guard !body.isEmpty else { return "" }
        let text = String(decoding: body.prefix(200), as: UTF8.self)
            .replacingOccurrences(of: "\n", with: " ").trimmingCharacters(in: .whitespaces)
        return text.isEmpty ? "" : " \(text)"
    }

    // MARK: Actual state

    public func grants() async throws -> [Grant] {
        var held: [Grant] = []
        var next: String? = endpoint.collectionTarget
        var read: Set<String> = []
        while let page = next {
            guard read.insert(page).inserted else {
                throw TargetError(.badResponse, target: id, "GET \(page) was already read: paging loops")
            }
            guard read.count <= maxPages else {
                throw TargetError(.badResponse, target: id, "more than \(maxPages) pages of grants")
            }
            let request = HTTPRequest(
                method: .GET, target: page,
                headers: [
                    ("User-Agent", "tether"), ("Accept", "application/json"),
                    ("Tether-Signature", signature.header(method: "GET", target: page, idempotencyKey: nil, body: [], at: clock.now())),
                ],
                body: [])
            let response: HTTPResponse
            do {
                response = try await exchange(request)
            } catch let failure as HTTPTransportFailure {
                throw TargetError(Self.code(failure), target: id, "GET \(page) failed", underlying: failure)
            }
            guard (200..<300).contains(response.status) else {
                throw TargetError(
                    .badResponse, target: id, "GET \(page) answered HTTP \(response.status)\(Self.excerpt(response.body))")
            }
            let decoded: GrantPage
            do {
                decoded = try JSONDecoder().decode(GrantPage.self, from: Data(response.body))
            } catch {
                throw TargetError(
                    .badResponse, target: id,
                    "GET \(page) did not answer {\"grants\":[{\"subject\",\"agent\",\"scope\",\"resource\"}]}",
                    underlying: error)
            }
            held += decoded.grants
            next = try decoded.next.flatMap { $0.isEmpty ? nil : try resolve(next: $0) }
        }
        return held
    }

    /// A page's `next`: an absolute URL on the same origin, an absolute path, or a cursor
    /// passed back as `?cursor=`.
    func resolve(next: String) throws -> String {
        if next.hasPrefix("/") { return next }
        if next.lowercased().hasPrefix("http://") || next.lowercased().hasPrefix("https://") {
            guard let other = HTTPEndpoint(next), other.sameOrigin(endpoint) else {
                throw TargetError(.badResponse, target: id, "next page \(next) is not on the target's own origin; it is not followed")
            }
            return other.collectionTarget
        }
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "&=+;")
        let cursor = next.addingPercentEncoding(withAllowedCharacters: allowed) ?? next
        let base = endpoint.collectionTarget
        return base + (base.contains("?") ? "&" : "?") + "cursor=" + cursor
    }

    static func code(_ failure: HTTPTransportFailure) -> TargetError.Code {
        switch failure {
        case .connect: .unreachable
        case .timedOut: .timeout
        case .closed, .io: .connectionLost
        case .tooLarge: .badResponse
        }
    }

    // MARK: Connection

    /// One exchange on the kept-alive connection; a connection the server closed while idle
    /// is replaced once (every request Tether sends is idempotent).
    func exchange(_ request: HTTPRequest) async throws -> HTTPResponse {
        for attempt in 0..<2 {
            let reused: Bool
            let current: HTTPConnection
            if let connection, connection.isActive {
                current = connection
                reused = true
            } else {
                connection?.close()
                current = try await HTTPConnection.connect(
                    to: endpoint, group: group, tls: tls, timeout: timeout, maxResponseBytes: maxResponseBytes)
                connection = current
                reused = false
            }
            do {
                let response = try await current.execute(request, host: endpoint.hostHeader, timeout: timeout)
                if response.closes { connection = nil }
                return response
            } catch let failure as HTTPTransportFailure where reused && attempt == 0 && failure.mayBeStaleConnection {
                current.close()
                connection = nil
                continue
            } catch {
                current.close()
                connection = nil
                throw error
            }
        }
        throw HTTPTransportFailure.closed
    }

    public func shutdown() async {
        connection?.close()
        connection = nil
    }
}

/// One page of `GET {url}`.
struct GrantPage: Decodable {
    var grants: [Grant]
    var next: String?
}
