import Foundation

/// Deterministic JSON: keys sorted, no insignificant white space, a fixed string escaping.
/// Hashes are computed over these bytes, so the encoding must never change.
public enum CanonicalJSON {
    /// Encodes a `Codable` value with sorted keys and no white space.
    public static func encode<Value: Encodable>(_ value: Value) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // Encoding our own plain value types cannot fail.
        let data = try! encoder.encode(value)
        return String(decoding: data, as: UTF8.self)
    }

    /// Encodes a flat object of strings and integers, keys sorted by their UTF-8 bytes.
    public static func object(_ fields: [String: AuditValue]) -> String {
        var out = "{"
        var first = true
        for key in fields.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }) {
            if !first { out += "," }
            first = false
            appendString(key, to: &out)
            out += ":"
            switch fields[key]! {
            case .string(let value): appendString(value, to: &out)
            case .int(let value): out += String(value)
            }
        }
        return out + "}"
    }

    /// Whether `value` goes into a JSON string as it is, with nothing to escape. Scanned as the
    /// bytes the string already holds (a native string always lends them).
    public static func isPlain(_ value: String) -> Bool {
        func needsEscaping(_ byte: UInt8) -> Bool { byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") }
        return value.utf8.withContiguousStorageIfAvailable { !$0.contains(where: needsEscaping) }
            ?? !value.utf8.contains(where: needsEscaping)
    }

    /// Appends `value` as a JSON string: `"` and `\` escaped, control characters as `\uXXXX`
    /// except the five with short escapes; everything else verbatim UTF-8.
    public static func appendString(_ value: String, to out: inout String) {
        out += "\""
        // Most values need no escaping: copy them whole (an audit record has a dozen).
        if isPlain(value) {
            out += value
            out += "\""
            return
        }
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            case _ where scalar.value < 0x20:
                out += "\\u00" + Hex.encode([UInt8(scalar.value)])
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}

/// A value in an audit record: records are flat objects of strings and integers.
public enum AuditValue: Sendable, Hashable, Codable {
    case string(String)
    case int(Int)

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let number = try? container.decode(Int.self) {
            self = .int(number)
        } else {
            self = .string(try container.decode(String.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .int(let value): try container.encode(value)
        }
    }

    public var string: String? {
        if case .string(let value) = self { return value }
        return nil
    }
}
