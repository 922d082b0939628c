import Hummingbird

/// The few JSON values the API answers with, written by hand: answers are small and flat,
/// and the check endpoint is on every agent's hot path.
enum JSONValue: Sendable {
    case string(String)
    case int(Int)
    case bool(Bool)

    /// A response whose body is the JSON object `fields`, keys in the order given.
    static func response(_ status: HTTPResponse.Status, _ fields: [(String, JSONValue)], headers: HTTPFields = [:]) -> Response {
        var text = "{"
        text.reserveCapacity(160)
        for (index, (key, value)) in fields.enumerated() {
            if index > 0 { text += "," }
            appendString(key, to: &text)
            text += ":"
            switch value {
            case .string(let string): appendString(string, to: &text)
            case .int(let int): text += String(int)
            case .bool(let bool): text += bool ? "true" : "false"
            }
        }
        text += "}"
        var headers = headers
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    /// Appends `string` as a JSON string literal (RFC 8259 §7).
    static func appendString(_ string: String, to text: inout String) {
        text += "\""
        if !string.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            text += string
        } else {
            for scalar in string.unicodeScalars {
                switch scalar {
                case "\"": text += "\\\""
                case "\\": text += "\\\\"
                case "\n": text += "\\n"
                case "\r": text += "\\r"
                case "\t": text += "\\t"
                case _ where scalar.value < 0x20:
                    let hex = String(scalar.value, radix: 16)
                    text += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                default: text.unicodeScalars.append(scalar)
                }
            }
        }
        text += "\""
    }
}
