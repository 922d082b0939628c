import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// Clients that stall or trickle cannot hold the public listener: each gets
/// `http.requestTimeout` to send a whole request, and everyone else is served meanwhile.
@Suite(.serialized) struct HostileClientTests {
    static let config = """
        check: { tokenFile: check.token }
        agents:
          - { id: support-copilot, kind: delegated, sponsor: jdoe }
        policies: []
        """

    @Test func stalledAndTricklingClientsAreCutOffAndOthersServed() async throws {
        let folder = try DaemonProcess.folder(files: ["check.token": "check-token-slow"])
        let daemon = try DaemonProcess(config: Self.config, folder: folder, http: "requestTimeout: 1s")
        defer { daemon.stop() }
        try await daemon.waitUntilReady()

        // Thirty clients send half a request and stop; one more trickles its body, which an
        // idle timeout alone would let through: every byte counts as activity.
        let stalled = try (0..<30).map { _ in try RawConnection(port: daemon.port) }
        for connection in stalled {
            #expect(connection.send("POST /v1/check HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n\r\n{\"sub"))
        }
        let trickler = try RawConnection(port: daemon.port)
        let body = String(repeating: " ", count: 400)
        #expect(trickler.send(
            "POST /v1/check HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer check-token-slow\r\n"
                + "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n"))
        let trickling = Task.detached {
            // One byte every 50 ms: well inside the idle timeout, never a whole request.
            var sent = 0
            for byte in body {
                guard trickler.send(String(byte)) else { return sent }
                sent += 1
                try? await Task.sleep(for: .milliseconds(50))
            }
            return sent
        }

        // Meanwhile the listener answers everyone else.
        for _ in 0..<20 {
            #expect(try await daemon.check("jdoe") == "deny")
            #expect(try await daemon.get("/healthz").0 == 200)
        }
        // Each stalled client is disconnected, and so is the trickler before its request ends.
        for connection in stalled {
            let closed = await connection.closedByPeer(within: 10)
            #expect(closed)
        }
        let sent = await trickling.value
        #expect(sent < body.count, "the trickling client sent all \(sent) bytes without being cut off")
        #expect(try await daemon.get("/healthz").0 == 200)
    }

    /// A gateway's connection answered from the bytes (``CheckWirePath``) is never seen by the
    /// HTTP handlers' clocks: it stays open as long as whole checks keep coming, however long
    /// that is, and is closed once none has come for the request timeout; a check it has
    /// started but not finished within that time is cut off as any request is.
    @Test func aConnectionOfChecksStaysOpenWhileTheyComeAndClosesWhenTheyStop() async throws {
        let folder = try DaemonProcess.folder(files: ["check.token": "check-token-slow"])
        let daemon = try DaemonProcess(config: Self.config, folder: folder, http: "requestTimeout: 1s")
        defer { daemon.stop() }
        try await daemon.waitUntilReady()
        let body = #"{"subject":"jdoe","agent":"support-copilot","scope":"tickets:read","resource":"zendesk:queue/Support"}"#
        let check = "POST /v1/check HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer check-token-slow\r\n"
            + "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"

        // Twelve checks 300 ms apart: 3.6 s on one connection, each within the second allowed.
        let steady = try RawConnection(port: daemon.port)
        for round in 0..<12 {
            #expect(steady.send(check), "round \(round): the connection was closed")
            let answers = await steady.answers(1, within: 5)
            #expect(answers.map(\.status) == [200], "round \(round)")
            try await Task.sleep(for: .milliseconds(300))
        }
        // Then nothing: closed within a little more than the request timeout.
        #expect(await steady.closedByPeer(within: 10))

        // Half a check after an answer, never finished: cut off like any trickling request.
        let halting = try RawConnection(port: daemon.port)
        #expect(halting.send(check))
        #expect(await halting.answers(1, within: 5).map(\.status) == [200])
        #expect(halting.send(String(check.prefix(60))))
        #expect(await halting.closedByPeer(within: 10))
    }

    /// Sockets the daemon holds open: its listeners, its connections, its notify socket.
    static func openSockets(of daemon: DaemonProcess) -> Int {
        let folder = "/proc/\(daemon.process.processIdentifier)/fd"
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        return entries.filter { ((try? FileManager.default.destinationOfSymbolicLink(atPath: "\(folder)/\($0)")) ?? "").hasPrefix("socket:") }
            .count
    }

    @Test func aFloodOfConnectionsWaitsInTheQueueBeyondMaxConnections() async throws {
        let folder = try DaemonProcess.folder(files: ["check.token": "check-token-slow"])
        let daemon = try DaemonProcess(config: Self.config, folder: folder, http: "requestTimeout: 60s, maxConnections: 8")
        defer { daemon.stop() }
        try await daemon.waitUntilReady()
        let idle = Self.openSockets(of: daemon)

        // A hundred clients connect and send half a request; each would hold a descriptor
        // for the whole request timeout.
        let flood = try (0..<100).map { _ in try RawConnection(port: daemon.port) }
        for connection in flood { connection.send("GET /healthz HTTP/1.1\r\nHost: x\r\n") }
        // One more asks for a whole answer: it waits in the accept queue behind them.
        let waiting = try RawConnection(port: daemon.port)
        waiting.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(await waiting.statusLine(within: 2) == nil, "a connection beyond http.maxConnections was served")
        // The daemon accepted at most its limit (NIO may accept a few in one read before the
        // limit applies), not the hundred.
        let held = Self.openSockets(of: daemon) - idle
        #expect(held <= 8 + 16, "the daemon holds \(held) connections with maxConnections 8")

        // Once the flood goes away the queue drains and the waiting client is answered.
        for connection in flood { connection.disconnect() }
        #expect(await waiting.statusLine(within: 20) == "HTTP/1.1 200 OK")
        #expect(try await daemon.get("/healthz").0 == 200)
    }

    @Test func anHREventWithoutAUsableSignatureIsRefusedBeforeItsBodyIsRead() async throws {
        let folder = try DaemonProcess.folder(files: ["hr.secret": "hr-secret-0123456789", "check.token": "check-token-slow"])
        let config = """
            sources:
              hr: { secretFiles: [hr.secret] }
            """ + "\n" + Self.config
        let daemon = try DaemonProcess(config: config, folder: folder, http: "requestTimeout: 60s")
        defer { daemon.stop() }
        try await daemon.waitUntilReady()

        // Each announces a body of 900 kB and sends none of it: the answer must not wait for it.
        let now = Int(Date().timeIntervalSince1970)
        let headers = [
            "",  // no Tether-Signature at all
            "Tether-Signature: t=\(now - 3600),v1=\(String(repeating: "0", count: 64))\r\n",  // an hour old
            "Tether-Signature: t=\(now + 3600),v1=\(String(repeating: "0", count: 64))\r\n",  // an hour ahead
            "Tether-Signature: t=\(now)\r\n",  // no v1
            "Tether-Signature: garbage\r\n",
        ]
        for header in headers {
            let connection = try RawConnection(port: daemon.port)
            connection.send(
                "POST /hooks/hr HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\(header)Content-Length: 900000\r\n\r\n")
            #expect(await connection.statusLine(within: 10) == "HTTP/1.1 401 Unauthorized", "\(header)")
        }
        // A fresh, well-formed header is checked against the body once it has arrived.
        let connection = try RawConnection(port: daemon.port)
        let body = #"{"id":"e1","type":"leaver","occurredAt":"2026-01-01T00:00:00Z","user":{"userName":"x"}}"#
        connection.send(
            "POST /hooks/hr HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                + "Tether-Signature: t=\(now),v1=\(String(repeating: "0", count: 64))\r\nContent-Length: \(body.utf8.count)\r\n\r\n")
        #expect(await connection.statusLine(within: 1) == nil, "answered before the body was sent")
        connection.send(body)
        #expect(await connection.statusLine(within: 10) == "HTTP/1.1 401 Unauthorized")
    }
}
