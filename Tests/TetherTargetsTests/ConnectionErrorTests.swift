import Foundation
import NIOCore
import NIOPosix
import Testing
import TetherConfig
import TetherCore
import TetherStore
@testable import TetherTargets

/// A target that cannot be reached is reported in one sentence naming the address and the
/// cause — in the outbox's last error (what `tether status` shows) and in the drift check's
/// error — never as a dump of NIO's error structures.
@Suite(.timeLimit(.minutes(1)))
struct ConnectionErrorTests {
    static func grant() -> Grant {
        Grant(subject: "alice", agent: "support-copilot", scope: "tickets:read", resource: "zendesk:queue/Support")
    }

    static func change(_ grant: Grant) -> OutboxEntry {
        OutboxEntry(id: 1, target: "gw", grantID: grant.id, operation: .put, grant: grant, createdAt: Date(), attempts: 0)
    }

    /// A refusal or a failed lookup comes back at once; the timeout is long so that a test run
    /// that keeps the machine busy cannot turn either into "no complete answer in time".
    static func target(url: String, timeout: Duration = .seconds(30)) throws -> HTTPGrantTarget {
        try HTTPGrantTarget(
            configuration: TargetConfiguration(id: "gw", url: url, secretFile: "/nonexistent", timeout: timeout), secret: Array("s".utf8))
    }

    /// An address nothing listens on: a port bound and not listened on, held until the test
    /// ends, so a connection is refused and no other test's server can take it meanwhile (a
    /// stopped server's port could still reset connections while it closes, or be taken).
    static func closedAddress() throws -> (host: String, port: Int, socket: ReservedPort) {
        let reserved = try ReservedPort()
        return ("127.0.0.1", reserved.port, reserved)
    }

    @Test func aRefusedDeliveryIsOneSentenceNamingTheAddress() async throws {
        let (host, port, reserved) = try Self.closedAddress()
        defer { reserved.close() }
        let target = try Self.target(url: "http://\(host):\(port)/grants")
        let grant = Self.grant()
        let outcome = await target.deliver(Self.change(grant))
        guard case .unavailable(let reason, _) = outcome else {
            Issue.record("expected the closed port to be unavailable, got \(outcome)")
            return
        }
        #expect(reason == "PUT /grants/\(grant.id): cannot connect to \(host):\(port): connection refused")
        await target.shutdown()
    }

    @Test func aRefusedReadOfTheTargetIsOneSentenceNamingTheAddress() async throws {
        let (host, port, reserved) = try Self.closedAddress()
        defer { reserved.close() }
        let target = try Self.target(url: "http://\(host):\(port)/grants")
        let error = await #expect(throws: TargetError.self) { try await target.grants() }
        #expect(error?.code == .unreachable)
        #expect(error?.description == "target gw: GET /grants failed: cannot connect to \(host):\(port): connection refused")
        await target.shutdown()
    }

    @Test func aNameThatDoesNotResolveSaysSo() async throws {
        let target = try Self.target(url: "http://tether-target.invalid:9400/grants")
        let outcome = await target.deliver(Self.change(Self.grant()))
        guard case .unavailable(let reason, _) = outcome else {
            Issue.record("expected an unresolvable name to be unavailable, got \(outcome)")
            return
        }
        #expect(reason.contains("cannot connect to tether-target.invalid:9400: name not resolved"), "\(reason)")
        #expect(!reason.contains("NIOConnectionError") && !reason.contains("SingleConnectionFailure"), "\(reason)")
        await target.shutdown()
    }

    @Test func causesAreWordsNotStructures() {
        #expect(ConnectionFailure.cause(of: ChannelError.connectTimeout(.seconds(10))) == "no connection within 10 s")
        #expect(ConnectionFailure.cause(of: ChannelError.connectTimeout(.milliseconds(1500))) == "no connection within 1.5 s")
        #expect(ConnectionFailure.cause(of: IOError(errnoCode: ECONNRESET, reason: "read")) == "connection reset by peer")
        #expect(ConnectionFailure.cause(of: ChannelError.eof) == "connection closed")
        let failure = ConnectionFailure(host: "::1", port: 9400, underlying: IOError(errnoCode: ECONNREFUSED, reason: "connect"))
        #expect(failure.description == "cannot connect to [::1]:9400: connection refused")
        #expect(HTTPTransportFailure.connect(failure).description == "cannot connect to [::1]:9400: connection refused")
        #expect(HTTPTransportFailure.io(IOError(errnoCode: EPIPE, reason: "write")).description == "connection failed: broken pipe")
    }
}

extension FakeTarget {
    /// The loopback address the fake listens on.
    static func hostOf(_ fake: FakeTarget) -> String { URL(string: fake.url)!.host! }
}

/// A loopback port bound by a socket that never listens: connecting to it is refused.
final class ReservedPort: Sendable {
    let descriptor: Int32
    let port: Int

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw POSIXError(.EMFILE) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { generic in
                bind(descriptor, generic, length) == 0 && getsockname(descriptor, generic, &length) == 0
            }
        }
        guard bound else {
            Glibc.close(descriptor)
            throw POSIXError(.EADDRINUSE)
        }
        self.descriptor = descriptor
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() { Glibc.close(descriptor) }
}
