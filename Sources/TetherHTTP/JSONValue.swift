import Hummingbird
import TetherCore

/// The few JSON values the API answers with, written by hand: answers are small and flat,
/// and the check endpoint is on every agent's hot path.
enum JSONValue: Sendable {
    case string(String)
    case int(Int)
    case bool(Bool)

    /// A response whose body is the JSON object `fields`, keys in the order given.
    static func response(_ status: HTTPResponse.Status, _ fields: [(String, JSONValue)], headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text(fields))))
    }

    /// `fields` as one JSON object, in their order.
    static func text(_ fields: [(String, JSONValue)]) -> String {
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
        return text + "}"
    }

    /// Appends `string` as a JSON string literal (RFC 8259 §7), escaped as the audit log escapes.
    static func appendString(_ string: String, to text: inout String) {
        CanonicalJSON.appendString(string, to: &text)
    }
}
