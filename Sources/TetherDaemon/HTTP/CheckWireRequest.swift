/// One `POST /v1/check` request read straight from a connection's bytes, for ``CheckWirePath``.
///
/// It reads only the plain form gateways send: the request line `POST /v1/check HTTP/1.1`,
/// header lines of a token, a colon and a visible value, one `Content-Length` and the body it
/// announces. Anything else — another request, a header that changes how the connection or
/// the body behaves (`Transfer-Encoding`, `Connection`, `Expect`, `Upgrade`), a header given
/// twice that must be given once, a byte no header may hold, a folded line, a bare LF, a head
/// or body past its limit — is ``Outcome/other``: the connection's HTTP decoder reads it, and
/// accepts or refuses it as it does every request. Being stricter than the decoder is safe;
/// being looser would not be, so nothing is accepted here that RFC 9112 does not allow.
enum CheckWireRequest {
    enum Outcome: Equatable {
        /// A whole check: the `Authorization` value's bytes (white space around it left out),
        /// the body's, and where the request ends. Offsets are into the bytes read.
        case check(authorization: Range<Int>?, body: Range<Int>, end: Int)
        /// The bytes so far are the start of a check: read more.
        case incomplete
        /// Not a request this path answers.
        case other
    }

    /// The most bytes a head may take, request line included.
    static let maxHeadBytes = 8_192
    /// The most header lines.
    static let maxFields = 64

    static let requestLine: [UInt8] = Array("POST /v1/check HTTP/1.1\r\n".utf8)

    /// Reads the request that starts at `start` in `bytes`; a body longer than `maxBodyBytes`
    /// is ``Outcome/other`` (the router refuses it with 413).
    static func read(_ bytes: UnsafeRawBufferPointer, from start: Int, maxBodyBytes: Int) -> Outcome {
        let available = bytes.count - start
        let line = requestLine.count
        for offset in 0..<min(line, available) where bytes[start + offset] != requestLine[offset] { return .other }
        guard available >= line else { return .incomplete }

        var index = start + line
        var contentLength: Int?
        var authorization: Range<Int>?
        var fields = 0
        while true {
            guard index - start <= maxHeadBytes else { return .other }
            guard index < bytes.count else { return .incomplete }
            if bytes[index] == cr {
                guard index + 1 < bytes.count else { return .incomplete }
                guard bytes[index + 1] == lf else { return .other }
                index += 2
                break
            }
            fields += 1
            guard fields <= maxFields else { return .other }
            switch field(bytes, at: index, headStart: start) {
            case .other: return .other
            case .incomplete: return .incomplete
            case .field(let name, let value, let tabbed, let next):
                switch name {
                case .contentLength:
                    // The HTTP decoder refuses a tab around a length: so does this.
                    guard contentLength == nil, !tabbed, let length = decimal(bytes, value), length <= maxBodyBytes else {
                        return .other
                    }
                    contentLength = length
                case .authorization:
                    guard authorization == nil else { return .other }
                    authorization = value
                case .refused:
                    return .other
                case .ignored:
                    break
                }
                index = next
            }
        }
        // A question has a body: without a length there is none to read.
        guard let contentLength else { return .other }
        guard bytes.count - index >= contentLength else { return .incomplete }
        return .check(authorization: authorization, body: index..<(index + contentLength), end: index + contentLength)
    }

    private enum Name {
        case contentLength, authorization
        /// Changes how the connection or the body is read: the HTTP decoder's.
        case refused
        case ignored
    }

    private enum Field {
        /// `tabbed`: a tab in the white space around the value.
        case field(Name, value: Range<Int>, tabbed: Bool, next: Int)
        case incomplete
        case other
    }

    /// The header line at `index`: a token, a colon, optional white space, a value of visible
    /// characters, spaces and tabs, optional white space, CRLF.
    private static func field(_ bytes: UnsafeRawBufferPointer, at index: Int, headStart: Int) -> Field {
        var cursor = index
        while cursor < bytes.count, isTokenCharacter(bytes[cursor]) { cursor += 1 }
        guard cursor < bytes.count else { return cursor - headStart > maxHeadBytes ? .other : .incomplete }
        // No name, or white space (or anything else) before the colon.
        guard cursor > index, bytes[cursor] == colon else { return .other }
        let name = classify(bytes, index..<cursor)
        cursor += 1
        let afterColon = cursor
        while cursor < bytes.count, bytes[cursor] == space || bytes[cursor] == tab { cursor += 1 }
        let valueStart = cursor
        var valueEnd = cursor
        while cursor < bytes.count {
            let byte = bytes[cursor]
            if byte == cr { break }
            // Visible ASCII and obs-text, or white space inside the value; no control byte.
            guard byte >= 0x20 && byte != 0x7F || byte == tab else { return .other }
            cursor += 1
            if byte != space && byte != tab { valueEnd = cursor }
        }
        guard cursor - headStart <= maxHeadBytes else { return .other }
        guard cursor + 1 < bytes.count else { return .incomplete }
        guard bytes[cursor + 1] == lf else { return .other }
        let tabbed = bytes[afterColon..<valueStart].contains(tab) || bytes[valueEnd..<cursor].contains(tab)
        return .field(name, value: valueStart..<valueEnd, tabbed: tabbed, next: cursor + 2)
    }

    private static func classify(_ bytes: UnsafeRawBufferPointer, _ name: Range<Int>) -> Name {
        func equals(_ expected: StaticString) -> Bool {
            guard name.count == expected.utf8CodeUnitCount else { return false }
            let lowered = expected.utf8Start
            for offset in 0..<name.count where bytes[name.lowerBound + offset] | 0x20 != lowered[offset] { return false }
            return true
        }
        switch name.count {
        case 14 where equals("content-length"): return .contentLength
        case 13 where equals("authorization"): return .authorization
        case 17 where equals("transfer-encoding"), 10 where equals("connection"), 6 where equals("expect"),
            7 where equals("upgrade"):
            return .refused
        default: return .ignored
        }
    }

    /// A `Content-Length` value: one to nine digits, nothing else.
    private static func decimal(_ bytes: UnsafeRawBufferPointer, _ value: Range<Int>) -> Int? {
        guard (1...9).contains(value.count) else { return nil }
        var result = 0
        for index in value {
            let digit = Int(bytes[index]) - 0x30
            guard (0...9).contains(digit) else { return nil }
            result = result * 10 + digit
        }
        return result
    }

    /// RFC 9110 §5.6.2 `tchar`.
    private static func isTokenCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
            UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
            UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            true
        default: false
        }
    }

    private static let cr = UInt8(ascii: "\r")
    private static let lf = UInt8(ascii: "\n")
    private static let colon = UInt8(ascii: ":")
    private static let space = UInt8(ascii: " ")
    private static let tab = UInt8(ascii: "\t")
}
