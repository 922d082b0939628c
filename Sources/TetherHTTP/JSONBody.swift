import Foundation
import Hummingbird

/// Reading request bodies: bounded by `http.maxBodyBytes`, decoded with faults reported by
/// JSON path.
enum JSONBody {
    /// Collects the whole body, refusing with 413 anything larger than `limit` bytes: at once
    /// when `Content-Length` says so, else as soon as the stream passes the limit.
    static func collect(_ request: Request, limit: Int) async throws(APIError) -> ByteBuffer {
        let tooLarge = APIError(.tooLarge, "the body is larger than the limit of \(limit) bytes (http.maxBodyBytes)")
        if let declared = request.headers[.contentLength].flatMap(Int.init), declared > limit {
            throw tooLarge
        }
        do {
            return try await request.body.collect(upTo: limit)
        } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            throw tooLarge
        } catch {
            throw APIError(.malformed, "the body could not be read", underlying: error)
        }
    }

    /// Decodes `buffer` as `T`, turning a decoding failure into a 400 that names the field.
    static func decode<T: Decodable>(_ type: T.Type, from buffer: ByteBuffer) throws(APIError) -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(buffer.readableBytesView))
        } catch let error as DecodingError {
            throw describe(error)
        } catch {
            throw APIError(.malformed, "the body is not valid JSON", path: "$", underlying: error)
        }
    }

    /// A decoding failure as a 400: what was wrong, and where.
    static func describe(_ error: DecodingError) -> APIError {
        switch error {
        case .keyNotFound(let key, let context):
            return APIError(.malformed, "is required", path: path(context.codingPath + [key]), underlying: error)
        case .valueNotFound(let type, let context):
            return APIError(.malformed, "must not be null; expected \(name(of: type))", path: path(context.codingPath), underlying: error)
        case .typeMismatch(let type, let context):
            return APIError(.malformed, "expected \(name(of: type))", path: path(context.codingPath), underlying: error)
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty {
                let reason = (context.underlyingError as? NSError)?.userInfo[NSDebugDescriptionErrorKey] as? String
                    ?? context.underlyingError.map { "\($0)" } ?? context.debugDescription
                return APIError(.malformed, "the body is not valid JSON: \(reason)", path: "$", underlying: error)
            }
            return APIError(.malformed, context.debugDescription, path: path(context.codingPath), underlying: error)
        @unknown default:
            return APIError(.malformed, "the body does not have the expected shape", path: "$", underlying: error)
        }
    }

    /// `$.user.emails[0].value`; keys that are not plain names in brackets (`$.user["urn:…:User"]`).
    static func path(_ codingPath: [any CodingKey]) -> String {
        var text = "$"
        for key in codingPath {
            if let index = key.intValue {
                text += "[\(index)]"
            } else if key.stringValue.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }), !key.stringValue.isEmpty {
                text += "." + key.stringValue
            } else {
                var quoted = ""
                JSONValue.appendString(key.stringValue, to: &quoted)
                text += "[\(quoted)]"
            }
        }
        return text
    }

    private static func name(of type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        case is Int.Type, is Double.Type: "a number"
        case is [Any].Type: "an array"
        case is [String: Any].Type: "an object"
        default: "an object"
        }
    }
}
