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
}
