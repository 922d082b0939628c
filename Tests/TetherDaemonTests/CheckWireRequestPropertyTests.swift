import NIOCore
import NIOEmbedded
import NIOHTTP1
import PropertyInput
import Testing

@testable import TetherDaemon

/// ``CheckWireRequest`` against the HTTP decoder every other request goes through: whatever
/// it reads as a check, the decoder reads as the same request — the same target, token and
/// body, ending at the same byte. A request the two read differently is how requests are
/// smuggled past one of them; being stricter is allowed (the decoder then reads it), looser
/// is not.
@Suite struct CheckWireRequestPropertyTests {
    static let body = #"{"subject":"jdoe","agent":"a","scope":"s","resource":"r"}"#

    static let corpus: [String] = {
        let length = body.utf8.count
        let plain = "POST /v1/check HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t0ken\r\nContent-Type: application/json\r\nContent-Length: \(length)\r\n\r\n\(body)"
        return [
            plain,
            plain + plain,
            "POST /v1/check HTTP/1.1\r\ncontent-length: \(length)\r\nauthorization:Bearer t0ken\r\n\r\n\(body)",
            "POST /v1/check HTTP/1.1\r\nAuthorization: \t Bearer t0ken \t\r\nX-Request-Id: 7f\r\nContent-Length: \(length)\r\n\r\n\(body)",
            "POST /v1/check HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}POST /v1/check HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            "POST /v1/check HTTP/1.1\r\nUser-Agent: gw/1.0 (linux)\r\nAccept: */*\r\nContent-Length: \(length)\r\nAuthorization: Bearer t0ken\r\n\r\n\(body)",
        ]
    }()

    static let tokens = [
        "\r\n", "\r", "\n", " ", "\t", ":", "\0", ",", "0", "9", "-1", "+", "Content-Length: ", "Content-Length: 5\r\n",
        "Transfer-Encoding: chunked\r\n", "Authorization: Bearer other\r\n", "Connection: close\r\n", "Expect: 100-continue\r\n",
        "POST", "GET", "/v1/check", "HTTP/1.1", "HTTP/1.0", "\r\n\r\n", "\u{7F}", "\u{80}", "\u{FF}", "\r\n ", "\r\n\t",
        "Host: y\r\n", "Content-Length: 00\r\n", "X: \u{1}\r\n",
    ]

    /// What NIO's HTTP/1 decoder reads from `bytes`: each part, or the error it stops at.
    static func decode(_ bytes: [UInt8]) -> (parts: [HTTPServerRequestPart], error: (any Error)?) {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .fireError)))
        defer { _ = try? channel.finish() }
        var parts: [HTTPServerRequestPart] = []
        do {
            try channel.writeInbound(ByteBuffer(bytes: bytes))
        } catch {
            while let part = try? channel.readInbound(as: HTTPServerRequestPart.self) { parts.append(part) }
            return (parts, error)
        }
        while let part = try? channel.readInbound(as: HTTPServerRequestPart.self) { parts.append(part) }
        return (parts, nil)
    }

    @Test func whatItReadsAsACheckTheHTTPDecoderReadsAsTheSameRequest() {
        let seed = propertySeed("CheckWireRequest against the HTTP decoder")
        var failures = PropertyFailures(seed: seed)
        // Nesting here is many requests in a row, and many header lines.
        var mutator = InputMutator(
            seed: seed, corpus: Self.corpus, tokens: Self.tokens,
            nesting: [
                (open: "POST /v1/check HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", close: "", core: ""),
                (open: "POST /v1/check HTTP/1.1\r\n", close: "X-A: 1\r\n", core: "Content-Length: 2\r\n"),
            ])
        let runs = 20_000
        var checks = 0
        for _ in 0..<runs {
            let (bytes, strategy) = mutator.next()
            let outcome = bytes.withUnsafeBytes { CheckWireRequest.read($0, from: 0, maxBodyBytes: 1_024) }
            guard case .check(let authorization, let body, let end) = outcome else { continue }
            checks += 1
            let request = Array(bytes[..<end])
            let shown = String(decoding: request, as: UTF8.self).debugDescription
            let (parts, error) = Self.decode(request)
            failures.check(error == nil, "\(strategy): read as a check, refused by the decoder (\(error.map { "\($0)" } ?? "")): \(shown)")
            guard error == nil else { continue }
            // One head, the body, one end: the decoder's request ends where this one does.
            var heads: [HTTPRequestHead] = []
            var decodedBody: [UInt8] = []
            var ends = 0
            for part in parts {
                switch part {
                case .head(let head): heads.append(head)
                case .body(let chunk): decodedBody += chunk.readableBytesView
                case .end: ends += 1
                }
            }
            failures.check(heads.count == 1 && ends == 1, "\(strategy): \(heads.count) heads and \(ends) ends: \(shown)")
            guard let head = heads.first else { continue }
            failures.check(
                head.method == .POST && head.uri == "/v1/check" && head.version == .http1_1,
                "\(strategy): the decoder read \(head.method) \(head.uri) \(head.version): \(shown)")
            failures.check(decodedBody == Array(bytes[body]), "\(strategy): another body: \(shown)")
            // The decoder keeps white space after a value, which is not the value's (RFC 9110
            // §5.5): the check's token is read without it on both paths.
            let decodedTokens = head.headers["Authorization"].map { $0.trimmingTrailing(" \t") }
            let token = authorization.map { String(decoding: bytes[$0], as: UTF8.self) }
            failures.check(
                decodedTokens == (token.map { [$0] } ?? []),
                "\(strategy): token \(token.debugDescription), the decoder's \(decodedTokens): \(shown)")
        }
        failures.finish("CheckWireRequest against the HTTP decoder: \(checks) of \(runs) inputs read as checks")
        // The property ran on many checks, not only on inputs both refuse.
        #expect(checks > runs / 10)
    }
}

extension String {
    fileprivate func trimmingTrailing(_ characters: String) -> String {
        var text = Substring(self)
        while let last = text.last, characters.contains(last) { text = text.dropLast() }
        return String(text)
    }
}
