import Foundation
import SlapdHarness
import TetherHTTP
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif

/// A running daemon under test, in a process of its own (``DaemonProcess``) or in this one
/// (``InProcessDaemon``): what the helpers below need to reach it as a client would.
protocol DaemonUnderTest: Sendable {
    /// The folder holding its configuration, secrets and store.
    var folder: URL { get }
    var configPath: String { get }
    /// The public listener's port.
    var port: Int { get }
    /// The environment `tether` commands run with.
    var environment: [String: String] { get }
    /// What it has logged so far.
    func log() -> String
}

/// An HTTP exchange with the public listener.
struct HTTPAnswer {
    var status: Int
    var body: String
}

extension DaemonUnderTest {
    /// Runs the `tether` CLI against this daemon.
    @discardableResult
    func cli(_ arguments: [String], input: Data? = nil) async throws -> CommandResult {
        try await DaemonProcess.run(arguments + ["--config", configPath], input: input, environment: environment)
    }

    /// GET on the public listener.
    func get(_ path: String) async throws -> (Int, String) {
        let (data, response) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        return ((response as! HTTPURLResponse).statusCode, String(decoding: data, as: UTF8.self))
    }

    /// POSTs `body` to the public listener with `headers`.
    func post(_ path: String, body: String, headers: [String: String]) async throws -> HTTPAnswer {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        request.httpMethod = "POST"
        request.httpBody = Data(body.utf8)
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        let (data, response) = try await URLSession.shared.data(for: request)
        return HTTPAnswer(status: (response as! HTTPURLResponse).statusCode, body: String(decoding: data, as: UTF8.self))
    }

    /// An HR event signed with the secret in `hr.secret` beside the config, to `/hooks/hr`.
    func postHR(_ event: String) async throws -> HTTPAnswer {
        let secret = try Data(contentsOf: folder.appendingPathComponent("hr.secret"))
        let signature = WebhookSignature.header(body: Data(event.utf8), secrets: [Array(secret)], time: Date())
        return try await post(
            "/hooks/hr", body: event,
            headers: ["Content-Type": "application/json", WebhookSignature.headerName.rawName: signature])
    }

    /// A SCIM user created with the token in `scim.token` beside the config.
    func postSCIM(_ user: String) async throws -> HTTPAnswer {
        let token = try String(contentsOf: folder.appendingPathComponent("scim.token"), encoding: .utf8)
        return try await post(
            "/scim/v2/Users", body: user,
            headers: ["Content-Type": "application/scim+json", "Authorization": "Bearer \(token)"])
    }

    /// `POST /v1/check` for `user`'s copilot on the Support queue: "allow", "deny", or nil
    /// when the answer is not a decision.
    func check(_ user: String) async throws -> String? {
        let token = try String(contentsOf: folder.appendingPathComponent("check.token"), encoding: .utf8)
        let body = #"{"agent":"support-copilot","subject":"\#(user)","scope":"tickets:read","resource":"zendesk:queue/Support"}"#
        let answer = try await post(
            "/v1/check", body: body, headers: ["Content-Type": "application/json", "Authorization": "Bearer \(token)"])
        let decoded = try JSONSerialization.jsonObject(with: Data(answer.body.utf8)) as? [String: Any]
        return (decoded?["allowed"] as? Bool).map { $0 ? "allow" : "deny" }
    }
}

/// A raw TCP connection to the daemon's public listener, for clients that misbehave.
/// Used by one test task at a time; the descriptor never changes.
final class RawConnection: @unchecked Sendable {
    private let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            throw DaemonTestError("cannot connect to 127.0.0.1:\(port): errno \(errno)")
        }
    }

    deinit { close(fd) }

    /// Sends `text`; false once the peer has closed the connection.
    @discardableResult
    func send(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
    }

    /// Ends the connection from this side; the descriptor is closed when the object goes.
    func disconnect() { shutdown(fd, Int32(SHUT_RDWR)) }

    /// The status line of the peer's answer (`HTTP/1.1 401 Unauthorized`), or nil when none
    /// arrives within `timeout` or the peer closes first. The wait blocks a thread of its own.
    func statusLine(within timeout: TimeInterval) async -> String? {
        (try? await offPool { self.statusLineBlocking(within: timeout) }) ?? nil
    }

    private func statusLineBlocking(within timeout: TimeInterval) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        var received: [UInt8] = []
        while Date() < deadline {
            guard poll(&descriptor, 1, 100) > 0 else { continue }
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = recv(fd, &buffer, buffer.count, 0)
            guard count > 0 else { return nil }
            received += buffer[..<count]
            if let end = received.firstIndex(of: UInt8(ascii: "\r")) {
                return String(decoding: received[..<end], as: UTF8.self)
            }
        }
        return nil
    }

    /// One answer read off the connection.
    struct Answer: Sendable {
        var status: Int
        /// Header names lowercased; the last value of a repeated one.
        var headers: [String: String]
        var body: String
    }

    /// The next `count` answers, each framed by its Content-Length, in the order they came;
    /// fewer when the peer closes or `timeout` passes first. The wait blocks a thread of its own.
    func answers(_ count: Int, within timeout: TimeInterval) async -> [Answer] {
        (try? await offPool { self.answersBlocking(count, within: timeout) }) ?? []
    }

    private func answersBlocking(_ count: Int, within timeout: TimeInterval) -> [Answer] {
        let deadline = Date().addingTimeInterval(timeout)
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        var received: [UInt8] = []
        var answers: [Answer] = []
        let separator = Array("\r\n\r\n".utf8)
        while answers.count < count && Date() < deadline {
            // Take every whole answer received so far.
            while let end = received.firstRange(of: separator) {
                let lines = String(decoding: received[..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
                var headers: [String: String] = [:]
                for line in lines.dropFirst() {
                    guard let colon = line.firstIndex(of: ":") else { continue }
                    headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
                }
                let length = Int(headers["content-length"] ?? "0") ?? 0
                guard received.count >= end.upperBound + length else { break }
                let status = lines.first.flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
                let body = String(decoding: received[end.upperBound..<end.upperBound + length], as: UTF8.self)
                answers.append(Answer(status: status, headers: headers, body: body))
                received.removeFirst(end.upperBound + length)
            }
            guard answers.count < count, poll(&descriptor, 1, 100) > 0 else { continue }
            var buffer = [UInt8](repeating: 0, count: 65_536)
            let read = recv(fd, &buffer, buffer.count, 0)
            guard read > 0 else { break }
            received += buffer[..<read]
        }
        return answers
    }

    /// Whether the peer closed the connection (end of stream or reset) before `timeout`.
    /// Bytes the peer sends first (an error response) are read and skipped. The wait blocks a
    /// thread of its own.
    func closedByPeer(within timeout: TimeInterval) async -> Bool {
        (try? await offPool { self.closedByPeerBlocking(within: timeout) }) ?? false
    }

    private func closedByPeerBlocking(within timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while Date() < deadline {
            let ready = poll(&descriptor, 1, 100)
            guard ready > 0 else { continue }
            var buffer = [UInt8](repeating: 0, count: 4096)
            if recv(fd, &buffer, buffer.count, 0) <= 0 { return true }
        }
        return false
    }
}
