import Foundation
import TetherCore

/// Why a document is not JSON, and where.
public struct SCIMJSONSyntaxError: Error, Sendable, Hashable, CustomStringConvertible {
    /// 1-based line and column of the offending byte.
    public var line: Int
    /// 1-based column, in characters.
    public var column: Int
    /// What is wrong.
    public var reason: String

    /// `invalid JSON at line L, column C: reason`.
    public var description: String { "invalid JSON at line \(line), column \(column): \(reason)" }
}

extension SCIMJSON {
    /// The deepest nesting a request may use; SCIM resources need about five levels.
    public static let maximumDepth = 32

    /// Parses one JSON document (RFC 8259, strict: no comments, no trailing commas).
    ///
    /// Duplicate member names, compared case-insensitively as SCIM attribute names are,
    /// are refused: which one would win is unspecified.
    public static func parse<Bytes: Collection<UInt8>>(_ bytes: Bytes) throws(SCIMJSONSyntaxError) -> SCIMJSON {
        var parser = Parser(bytes: Array(bytes))
        parser.skipWhitespace()
        let value = try parser.value(depth: 0)
        parser.skipWhitespace()
        guard parser.index == parser.bytes.count else {
            throw parser.error("unexpected text after the document")
        }
        return value
    }

    /// Parses a JSON document given as text.
    public static func parse(_ text: String) throws(SCIMJSONSyntaxError) -> SCIMJSON {
        try parse(Array(text.utf8))
    }

    /// The compact JSON text of this value; member order is kept, `/` is not escaped.
    public var text: String {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// The compact JSON bytes of this value.
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(into: &out)
        return out
    }

    func write(into out: inout [UInt8]) {
        switch self {
        case .null: out += Array("null".utf8)
        case .bool(let value): out += Array((value ? "true" : "false").utf8)
        case .integer(let value): out += Array(String(value).utf8)
        case .decimal(let value):
            if value.isFinite {
                out += Array((value == value.rounded() && abs(value) < 1e15 ? String(format: "%.1f", value) : "\(value)").utf8)
            } else {
                out += Array("null".utf8)
            }
        case .string(let value): Self.writeString(value, into: &out)
        case .array(let values):
            out.append(UInt8(ascii: "["))
            for (index, value) in values.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                value.write(into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .object(let object):
            out.append(UInt8(ascii: "{"))
            for (index, member) in object.members.enumerated() {
                if index > 0 { out.append(UInt8(ascii: ",")) }
                Self.writeString(member.name, into: &out)
                out.append(UInt8(ascii: ":"))
                member.value.write(into: &out)
            }
            out.append(UInt8(ascii: "}"))
        }
    }

    private static func writeString(_ string: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out += [UInt8(ascii: "\\"), UInt8(ascii: "\"")]
            case UInt8(ascii: "\\"): out += [UInt8(ascii: "\\"), UInt8(ascii: "\\")]
            case 0x0A: out += [UInt8(ascii: "\\"), UInt8(ascii: "n")]
            case 0x0D: out += [UInt8(ascii: "\\"), UInt8(ascii: "r")]
            case 0x09: out += [UInt8(ascii: "\\"), UInt8(ascii: "t")]
            case 0..<0x20:
                out += Array("\\u00".utf8)
                Hex.append(byte, to: &out)
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

private struct Parser {
    let bytes: [UInt8]
    var index = 0

    init(bytes: [UInt8]) { self.bytes = bytes }

    func error(_ reason: String, at position: Int? = nil) -> SCIMJSONSyntaxError {
        let end = min(position ?? index, bytes.count)
        var line = 1
        var column = 1
        for byte in bytes[..<end] {
            if byte == 0x0A {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {
                column += 1
            }
        }
        return SCIMJSONSyntaxError(line: line, column: column, reason: reason)
    }

    mutating func skipWhitespace() {
        while index < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
    }

    func describeHere() -> String {
        guard index < bytes.count else { return "the end of the document" }
        let byte = bytes[index]
        if byte >= 0x20 && byte < 0x7F { return "'\(Character(UnicodeScalar(byte)))'" }
        return String(format: "byte 0x%02X", byte)
    }

    mutating func value(depth: Int) throws(SCIMJSONSyntaxError) -> SCIMJSON {
        guard depth <= SCIMJSON.maximumDepth else {
            throw error("nested deeper than \(SCIMJSON.maximumDepth) levels")
        }
        guard index < bytes.count else { throw error("expected a value, found the end of the document") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try object(depth: depth)
        case UInt8(ascii: "["): return try array(depth: depth)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return try number()
        default: throw error("expected a value, found \(describeHere())")
        }
    }

    mutating func literal(_ word: String) throws(SCIMJSONSyntaxError) {
        let expected = Array(word.utf8)
        guard index + expected.count <= bytes.count, Array(bytes[index..<index + expected.count]) == expected else {
            throw error("expected '\(word)'")
        }
        index += expected.count
    }

    mutating func object(depth: Int) throws(SCIMJSONSyntaxError) -> SCIMJSON {
        index += 1
        var members: [SCIMJSON.Object.Member] = []
        var seen = Set<String>()
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            return .object(SCIMJSON.Object(members))
        }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else {
                throw error("expected a member name in quotes, found \(describeHere())")
            }
            let start = index
            let name = try string()
            guard seen.insert(name.lowercased()).inserted else {
                throw error("the member \"\(name)\" appears twice", at: start)
            }
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else {
                throw error("expected ':' after the member name \"\(name)\", found \(describeHere())")
            }
            index += 1
            skipWhitespace()
            members.append(SCIMJSON.Object.Member(name, try value(depth: depth + 1)))
            skipWhitespace()
            guard index < bytes.count else { throw error("the object is not closed") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            if bytes[index] == UInt8(ascii: "}") {
                index += 1
                return .object(SCIMJSON.Object(members))
            }
            throw error("expected ',' or '}' in an object, found \(describeHere())")
        }
    }

    mutating func array(depth: Int) throws(SCIMJSONSyntaxError) -> SCIMJSON {
        index += 1
        var values: [SCIMJSON] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            return .array(values)
        }
        while true {
            skipWhitespace()
            values.append(try value(depth: depth + 1))
            skipWhitespace()
            guard index < bytes.count else { throw error("the array is not closed") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            if bytes[index] == UInt8(ascii: "]") {
                index += 1
                return .array(values)
            }
            throw error("expected ',' or ']' in an array, found \(describeHere())")
        }
    }

    mutating func hex4() throws(SCIMJSONSyntaxError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw error("a \\u escape needs four hex digits") }
        do throws(Hex.InvalidDigit) {
            let value = try Hex.number(bytes[index..<(index + 4)])
            index += 4
            return UInt32(value)
        } catch {
            throw self.error("a \\u escape needs four hex digits", at: index + error.offset)
        }
    }

    mutating func string() throws(SCIMJSONSyntaxError) -> String {
        let start = index
        index += 1
        var out: [UInt8] = []
        while true {
            guard index < bytes.count else { throw error("the string is not closed", at: start) }
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                guard let text = String(validating: out, as: UTF8.self) else {
                    throw error("the string is not valid UTF-8", at: start)
                }
                return text
            case UInt8(ascii: "\\"):
                index += 1
                guard index < bytes.count else { throw error("the string is not closed", at: start) }
                let escape = bytes[index]
                index += 1
                if let simple = JSONReader.simpleEscape(escape) {
                    out.append(simple)
                } else if escape == UInt8(ascii: "u") {
                    var scalar = try hex4()
                    if (0xD800...0xDBFF).contains(scalar) {
                        guard index + 1 < bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u")
                        else { throw error("a lone UTF-16 surrogate in a \\u escape") }
                        index += 2
                        let low = try hex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw error("a lone UTF-16 surrogate in a \\u escape") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(scalar) {
                        throw error("a lone UTF-16 surrogate in a \\u escape")
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { throw error("an invalid \\u escape") }
                    out += Array(String(Character(unicode)).utf8)
                } else {
                    throw error("an unknown escape '\\\(Character(UnicodeScalar(escape)))'", at: index - 2)
                }
            case 0..<0x20:
                throw error("a control character inside a string must be escaped")
            default:
                out.append(byte)
                index += 1
            }
        }
    }

    mutating func number() throws(SCIMJSONSyntaxError) -> SCIMJSON {
        let start = index
        var integral = true
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        func digits(_ parser: inout Parser) -> Int {
            var count = 0
            while parser.index < parser.bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(parser.bytes[parser.index]) {
                parser.index += 1
                count += 1
            }
            return count
        }
        guard index < bytes.count else { throw error("a number needs digits", at: start) }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
            if index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) {
                throw error("a number may not have leading zeros", at: start)
            }
        } else if digits(&self) == 0 {
            throw error("a number needs digits", at: start)
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            integral = false
            index += 1
            guard digits(&self) > 0 else { throw error("a number needs digits after '.'", at: start) }
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            integral = false
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard digits(&self) > 0 else { throw error("a number needs digits in its exponent", at: start) }
        }
        let text = String(decoding: bytes[start..<index], as: UTF8.self)
        if integral, let value = Int64(text) { return .integer(value) }
        guard let value = Double(text), value.isFinite else { throw error("the number \(text) is out of range", at: start) }
        return .decimal(value)
    }
}
