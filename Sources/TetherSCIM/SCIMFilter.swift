/// A SCIM filter (RFC 7644 §3.4.2.2) as a tree.
///
/// Keywords and attribute names are case-insensitive. `attr[filter]` (a value path) matches
/// when one value of a multi-valued attribute matches the inner filter, whose paths are
/// relative to that value; `attr[filter].sub op value` is accepted as a shorthand for
/// `attr[filter and sub op value]`.
public indirect enum SCIMFilter: Sendable, Hashable, CustomStringConvertible {
    /// The comparison operators.
    public enum Operator: String, Sendable, Hashable, CaseIterable {
        case eq, ne, co, sw, ew, gt, ge, lt, le
    }

    case and(SCIMFilter, SCIMFilter)
    case or(SCIMFilter, SCIMFilter)
    case not(SCIMFilter)
    /// `attr pr`.
    case present(SCIMAttributePath)
    /// `attr op value`; the value is a string, number, boolean or null.
    case compare(SCIMAttributePath, Operator, SCIMJSON)
    /// `attr[filter]`.
    case valuePath(SCIMAttributePath, SCIMFilter)

    /// The filter in RFC syntax, fully parenthesised.
    public var description: String {
        switch self {
        case .and(let a, let b): "(\(a) and \(b))"
        case .or(let a, let b): "(\(a) or \(b))"
        case .not(let inner): "not (\(inner))"
        case .present(let path): "\(path) pr"
        case .compare(let path, let op, let value): "\(path) \(op.rawValue) \(value.text)"
        case .valuePath(let path, let inner): "\(path)[\(inner)]"
        }
    }

    /// Parses a filter; a syntax error is `400 invalidFilter` saying where.
    ///
    /// - Parameter knownSchemas: URNs that attribute paths may be qualified with.
    public static func parse(_ text: String, knownSchemas: [String] = []) throws(SCIMError) -> SCIMFilter {
        var parser = FilterParser(text: text, knownSchemas: knownSchemas)
        let filter = try parser.parseFilter(inValuePath: false)
        parser.skipSpaces()
        guard parser.atEnd else {
            throw parser.failure("unexpected \(parser.describeHere()) after a complete filter")
        }
        return filter
    }

    /// Parses the value filter of a PATCH path (`members[value eq "x"]`): no nested value paths.
    static func parseValueFilter(_ text: String, offset: Int, whole: String) throws(SCIMError) -> SCIMFilter {
        var parser = FilterParser(text: text, knownSchemas: [])
        parser.reportOffset = offset
        parser.reportWhole = whole
        let filter = try parser.parseFilter(inValuePath: true)
        parser.skipSpaces()
        guard parser.atEnd else {
            throw parser.failure("unexpected \(parser.describeHere()) after a complete filter")
        }
        return filter
    }
}

/// A recursive-descent parser over the filter's characters, with `not` > `and` > `or`.
private struct FilterParser {
    let characters: [Character]
    let knownSchemas: [String]
    var index = 0
    /// Where `characters` starts inside the text reported in errors (PATCH paths).
    var reportOffset = 0
    var reportWhole: String?

    init(text: String, knownSchemas: [String]) {
        characters = Array(text)
        self.knownSchemas = knownSchemas
    }

    var atEnd: Bool { index >= characters.count }

    func failure(_ reason: String, at position: Int? = nil) -> SCIMError {
        let where_ = (position ?? index) + reportOffset + 1
        let subject = reportWhole.map { "path \"\($0)\"" } ?? "filter"
        return .invalidFilter("invalid \(subject) at character \(where_): \(reason)")
    }

    func describeHere() -> String {
        guard !atEnd else { return "end of filter" }
        var end = index
        while end < characters.count, !characters[end].isWhitespace, end - index < 24 { end += 1 }
        return "\"\(String(characters[index..<max(end, index + 1)]))\""
    }

    mutating func skipSpaces() {
        while index < characters.count, characters[index].isWhitespace { index += 1 }
    }

    /// A run of characters that are not spaces, brackets, parentheses or quotes.
    mutating func word() -> String {
        let start = index
        while index < characters.count {
            let c = characters[index]
            if c.isWhitespace || "()[]\"".contains(c) { break }
            index += 1
        }
        return String(characters[start..<index])
    }

    func peekWord() -> String {
        var copy = self
        copy.skipSpaces()
        return copy.word()
    }

    mutating func parseFilter(inValuePath: Bool) throws(SCIMError) -> SCIMFilter {
        var left = try parseAnd(inValuePath: inValuePath)
        while true {
            let save = index
            skipSpaces()
            let keyword = word()
            if keyword.lowercased() == "or" {
                left = .or(left, try parseAnd(inValuePath: inValuePath))
            } else {
                index = save
                return left
            }
        }
    }

    mutating func parseAnd(inValuePath: Bool) throws(SCIMError) -> SCIMFilter {
        var left = try parseUnary(inValuePath: inValuePath)
        while true {
            let save = index
            skipSpaces()
            let keyword = word()
            if keyword.lowercased() == "and" {
                left = .and(left, try parseUnary(inValuePath: inValuePath))
            } else {
                index = save
                return left
            }
        }
    }

    mutating func parseUnary(inValuePath: Bool) throws(SCIMError) -> SCIMFilter {
        skipSpaces()
        guard !atEnd else { throw failure("expected an attribute, \"not\" or \"(\", found the end of the filter") }
        if characters[index] == "(" {
            return try parseGroup(inValuePath: inValuePath)
        }
        let start = index
        let name = word()
        if name.lowercased() == "not" {
            skipSpaces()
            guard !atEnd, characters[index] == "(" else {
                throw failure("\"not\" must be followed by a parenthesised filter, found \(describeHere())")
            }
            return .not(try parseGroup(inValuePath: inValuePath))
        }
        guard !name.isEmpty else {
            throw failure("expected an attribute, \"not\" or \"(\", found \(describeHere())")
        }
        guard let path = SCIMAttributePath.parse(name, knownSchemas: knownSchemas), path.attribute != nil else {
            throw failure("\"\(name)\" is not an attribute path", at: start)
        }
        if !atEnd, characters[index] == "[" {
            guard !inValuePath else { throw failure("a value filter cannot contain another value filter") }
            guard path.subAttribute == nil else {
                throw failure("a value filter applies to an attribute, not to the sub-attribute \"\(name)\"", at: start)
            }
            let open = index
            index += 1
            let inner = try parseFilter(inValuePath: true)
            skipSpaces()
            guard !atEnd, characters[index] == "]" else {
                throw failure("the value filter opened at character \(open + reportOffset + 1) is not closed with \"]\"")
            }
            index += 1
            // `emails[type eq "work"].value eq "x"`: a shorthand for `emails[type eq "work" and value eq "x"]`.
            if !atEnd, characters[index] == "." {
                index += 1
                let subStart = index
                let sub = word()
                guard SCIMAttributePath.isAttributeName(Substring(sub)) else {
                    throw failure("\"\(sub)\" is not a sub-attribute name", at: subStart)
                }
                let condition = try parseCondition(on: SCIMAttributePath(attribute: sub), named: sub)
                return .valuePath(path, .and(inner, condition))
            }
            return .valuePath(path, inner)
        }
        return try parseCondition(on: path, named: name)
    }

    mutating func parseGroup(inValuePath: Bool) throws(SCIMError) -> SCIMFilter {
        let open = index
        index += 1
        let inner = try parseFilter(inValuePath: inValuePath)
        skipSpaces()
        guard !atEnd, characters[index] == ")" else {
            throw failure("the parenthesis opened at character \(open + reportOffset + 1) is not closed, found \(describeHere())")
        }
        index += 1
        return inner
    }

    /// `pr`, or an operator and a comparison value, after an attribute path.
    mutating func parseCondition(on path: SCIMAttributePath, named name: String) throws(SCIMError) -> SCIMFilter {
        skipSpaces()
        let opStart = index
        let keyword = word().lowercased()
        if keyword == "pr" { return .present(path) }
        guard let op = SCIMFilter.Operator(rawValue: keyword) else {
            if keyword.isEmpty {
                throw failure("expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le or pr) after \"\(name)\", found \(describeHere())")
            }
            throw failure("\"\(keyword)\" is not an operator; expected eq, ne, co, sw, ew, gt, ge, lt, le or pr after \"\(name)\"", at: opStart)
        }
        skipSpaces()
        return .compare(path, op, try parseValue(after: op))
    }

    mutating func parseValue(after op: SCIMFilter.Operator) throws(SCIMError) -> SCIMJSON {
        guard !atEnd else { throw failure("expected a value after \"\(op.rawValue)\", found the end of the filter") }
        let start = index
        if characters[index] == "\"" {
            index += 1
            var escaped = false
            while index < characters.count {
                let c = characters[index]
                if escaped {
                    escaped = false
                } else if c == "\\" {
                    escaped = true
                } else if c == "\"" {
                    break
                }
                index += 1
            }
            guard index < characters.count else { throw failure("the string starting here is not closed", at: start) }
            index += 1
            let literal = String(characters[start..<index])
            do {
                return try SCIMJSON.parse(literal)
            } catch {
                throw failure("the string starting here is not a valid JSON string (\(error.reason))", at: start)
            }
        }
        let text = word()
        switch text.lowercased() {
        case "true": return .bool(true)
        case "false": return .bool(false)
        case "null": return .null
        default: break
        }
        if let number = try? SCIMJSON.parse(text), number.numberValue != nil { return number }
        throw failure(
            text.isEmpty
                ? "expected a value after \"\(op.rawValue)\", found \(describeHere())"
                : "\"\(text)\" is not a value; strings must be in double quotes, or use a number, true, false or null",
            at: start)
    }
}
