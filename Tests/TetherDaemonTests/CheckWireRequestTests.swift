import Testing

@testable import TetherDaemon

/// ``CheckWireRequest``: the plain check it reads in place, and everything it leaves to the
/// HTTP decoder.
@Suite struct CheckWireRequestTests {
    static let body = #"{"subject":"jdoe","agent":"a","scope":"s","resource":"r"}"#

    static func request(
        line: String = "POST /v1/check HTTP/1.1", headers: [String]? = nil, body: String = Self.body
    ) -> String {
        let fields = headers ?? ["Host: x", "Authorization: Bearer t0ken", "Content-Type: application/json", "Content-Length: \(body.utf8.count)"]
        return line + "\r\n" + fields.map { $0 + "\r\n" }.joined() + "\r\n" + body
    }

    static func read(_ text: String, from start: Int = 0, maxBodyBytes: Int = 1_024) -> CheckWireRequest.Outcome {
        Array(text.utf8).withUnsafeBytes { CheckWireRequest.read($0, from: start, maxBodyBytes: maxBodyBytes) }
    }

    static func slice(_ text: String, _ range: Range<Int>) -> String {
        String(decoding: Array(text.utf8)[range], as: UTF8.self)
    }

    @Test func aPlainCheckIsReadWithItsTokenAndBody() throws {
        let text = Self.request()
        guard case .check(let authorization, let body, let end) = Self.read(text) else {
            Issue.record("not read: \(Self.read(text))")
            return
        }
        #expect(Self.slice(text, try #require(authorization)) == "Bearer t0ken")
        #expect(Self.slice(text, body) == Self.body)
        #expect(end == text.utf8.count)
    }

    @Test func namesAreCaseInsensitiveAndWhiteSpaceAroundValuesIsNotTheirs() throws {
        let text = Self.request(headers: ["aUtHoRiZaTiOn:\t Bearer t0ken \t", "CONTENT-LENGTH:\(Self.body.utf8.count)  ", "X-Empty:"])
        guard case .check(let authorization, let body, _) = Self.read(text) else {
            Issue.record("not read: \(Self.read(text))")
            return
        }
        #expect(Self.slice(text, try #require(authorization)) == "Bearer t0ken")
        #expect(Self.slice(text, body) == Self.body)
    }

    @Test func aRequestIsReadWhereItStartsAndEndsWhereItsBodyDoes() {
        let first = Self.request()
        let text = first + Self.request(body: "{}")
        guard case .check(_, let body, let end) = Self.read(text, from: first.utf8.count) else {
            Issue.record("the second request was not read")
            return
        }
        #expect(Self.slice(text, body) == "{}")
        #expect(end == text.utf8.count)
    }

    @Test func everyStartOfACheckAsksForMore() {
        let text = Self.request()
        for length in 0..<text.utf8.count {
            let prefix = Self.slice(text, 0..<length)
            #expect(Self.read(prefix) == .incomplete, "the first \(length) bytes: \(prefix.debugDescription)")
        }
    }

    @Test func withoutATokenTheCheckIsStillReadForTheAnswererToRefuse() {
        guard case .check(let authorization, _, _) = Self.read(Self.request(headers: ["Content-Length: \(Self.body.utf8.count)"])) else {
            Issue.record("not read")
            return
        }
        #expect(authorization == nil)
    }

    @Test(arguments: [
        // Another method, path, query, version or request line.
        request(line: "GET /v1/check HTTP/1.1"), request(line: "post /v1/check HTTP/1.1"), request(line: "POST /v1/check?x=1 HTTP/1.1"),
        request(line: "POST /v1/checks HTTP/1.1"), request(line: "POST /v1/check HTTP/1.0"), request(line: "POST  /v1/check HTTP/1.1"),
        request(line: "POST http://x/v1/check HTTP/1.1"), "GET /healthz HTTP/1.1\r\n\r\n", "POST /v1/check HTTP/1.1\n",
        // Headers that change how the connection or the body is read.
        request(headers: ["Transfer-Encoding: chunked", "Content-Length: \(body.utf8.count)"]),
        request(headers: ["Connection: close", "Content-Length: \(body.utf8.count)"]),
        request(headers: ["Expect: 100-continue", "Content-Length: \(body.utf8.count)"]),
        request(headers: ["Upgrade: h2c", "Content-Length: \(body.utf8.count)"]),
        // Lengths that are not one plain number within the limit, or none.
        request(headers: ["Content-Length: \(body.utf8.count)", "Content-Length: \(body.utf8.count)"]),
        request(headers: ["Content-Length: +\(body.utf8.count)"]), request(headers: ["Content-Length: \(body.utf8.count), 5"]),
        request(headers: ["Content-Length: 0x10"]), request(headers: ["Content-Length: \(body.utf8.count)\t"]),
        request(headers: ["Content-Length:\t\(body.utf8.count)"]), request(headers: ["Content-Length:"]), request(headers: ["Content-Length: 1025"], body: ""),
        request(headers: ["Content-Length: 99999999999"], body: ""), request(headers: ["Host: x"], body: ""),
        // Two tokens.
        request(headers: ["Authorization: Bearer a", "Authorization: Bearer b", "Content-Length: \(body.utf8.count)"]),
        // Lines RFC 9112 refuses: space before the colon, no name, a folded line, a bare LF,
        // a control byte, a name that is not a token, CR not before LF.
        request(headers: ["Content-Length : \(body.utf8.count)"]), request(headers: [": x", "Content-Length: \(body.utf8.count)"]),
        request(headers: ["X-A: 1", " folded", "Content-Length: \(body.utf8.count)"]),
        "POST /v1/check HTTP/1.1\r\nContent-Length: 2\n\r\n{}", "POST /v1/check HTTP/1.1\r\nX-A: 1\u{0}2\r\nContent-Length: 2\r\n\r\n{}",
        "POST /v1/check HTTP/1.1\r\nX-A: 1\u{7F}\r\nContent-Length: 2\r\n\r\n{}", "POST /v1/check HTTP/1.1\r\nX(A): 1\r\nContent-Length: 2\r\n\r\n{}",
        "POST /v1/check HTTP/1.1\r\nX-A: 1\rx\r\nContent-Length: 2\r\n\r\n{}", "POST /v1/check HTTP/1.1\r\nContent-Length: 2\r\n\rx{}",
    ])
    func anythingElseIsTheDecoders(_ text: String) {
        #expect(Self.read(text) == .other, "\(text.debugDescription)")
    }

    @Test func aHeadPastItsLimitsIsTheDecodersBeforeItEnds() {
        let long = "POST /v1/check HTTP/1.1\r\nX-Long: " + String(repeating: "a", count: CheckWireRequest.maxHeadBytes)
        #expect(Self.read(long) == .other)
        let many = "POST /v1/check HTTP/1.1\r\n" + String(repeating: "X-A: 1\r\n", count: CheckWireRequest.maxFields + 1)
        #expect(Self.read(many) == .other)
        let name = "POST /v1/check HTTP/1.1\r\n" + String(repeating: "x", count: CheckWireRequest.maxHeadBytes)
        #expect(Self.read(name) == .other)
    }
}
