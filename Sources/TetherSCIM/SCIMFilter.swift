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

    /// How deeply parentheses, `not` and value filters may nest, in the filter as written and
    /// in its ``description``. Real filters use two or three levels; the bound keeps the
    /// parser, and everything that walks a filter, from exhausting the stack on `((((…`.
    public static let maximumDepth = 32

    /// The most conditions (`attr op value`, `attr pr`) one filter may hold. Every stored
    /// resource is tested against the filter, and `a and b and c …` nests one level per term.
    public static let maximumConditions = 200

    /// The filter in RFC syntax, fully parenthesised; a run of one operator is written as one
    /// group, `(a and b and c)`, so the text nests no deeper than the filter does.
    public var description: String {
        switch self {
        case .and, .or:
            let (keyword, terms) = chain
            return "(" + terms.map(\.description).joined(separator: " \(keyword) ") + ")"
        case .not(let inner): return "not (\(inner))"
        case .present(let path): return "\(path) pr"
        case .compare(let path, let op, let value): return "\(path) \(op.rawValue) \(value.text)"
        case .valuePath(let path, let inner): return "\(path)[\(inner)]"
        }
    }

    /// For `and` and `or`, the operator and its terms in order, gathered along the left
    /// branch as the parser builds them: `((a and b) and c)` has the terms a, b and c.
    private var chain: (keyword: String, terms: [SCIMFilter]) {
        let isAnd: Bool
        switch self {
        case .and: isAnd = true
        case .or: isAnd = false
        default: return ("", [self])
        }
        var terms: [SCIMFilter] = []
        var current = self
        while true {
            switch current {
            case .and(let left, let right) where isAnd, .or(let left, let right) where !isAnd:
                terms.append(right)
                current = left
            default:
                terms.append(current)
                return (isAnd ? "and" : "or", terms.reversed())
            }
        }
    }

    /// How deeply the ``description`` nests parentheses, `not` and value filters.
    var writtenDepth: Int {
        switch self {
        case .and, .or: 1 + (chain.terms.map(\.writtenDepth).max() ?? 0)
        case .not(let inner), .valuePath(_, let inner): 1 + inner.writtenDepth
        case .present, .compare: 0
        }
    }

    /// Parses a filter; a syntax error is `400 invalidFilter` saying where.
    ///
    /// - Parameter knownSchemas: URNs that attribute paths may be qualified with.
    public static func parse(_ text: String, knownSchemas: [String] = []) throws(SCIMError) -> SCIMFilter {
        var parser = FilterParser(text: text, knownSchemas: knownSchemas)
        return try parser.parseWhole(inValuePath: false)
    }

    /// Parses the value filter of a PATCH path (`members[value eq "x"]`): no nested value paths.
    static func parseValueFilter(_ text: String, offset: Int, whole: String) throws(SCIMError) -> SCIMFilter {
        var parser = FilterParser(text: text, knownSchemas: [])
        parser.reportOffset = offset
        parser.reportWhole = whole
        return try parser.parseWhole(inValuePath: true)
    }
}

/// A recursive-descent parser over the filter's Unicode scalars, with `not` > `and` > `or`.
///
/// It reads scalars, not characters: a combining mark after a quote or a bracket must not
/// merge with it into one character and hide it from the grammar.
private struct FilterParser {
    let characters: [Unicode.Scalar]
    let knownSchemas: [String]
    var index = 0
    /// How many parentheses, `not`s and value filters enclose the current position.
    var depth = 0
    /// How many conditions have been read.
    var conditions = 0
    /// Where `characters` starts inside the text reported in errors (PATCH paths).
    var reportOffset = 0
    var reportWhole: String?

    init(text: String, knownSchemas: [String]) {
        characters = Array(text.unicodeScalars)
        self.knownSchemas = knownSchemas
    }

    var atEnd: Bool { index >= characters.count }

    func failure(_ reason: String, at position: Int? = nil) -> SCIMError {
        let where_ = (position ?? index) + reportOffset + 1
        let subject = reportWhole.map { "path \"\($0)\"" } ?? "filter"
        return .invalidFilter("invalid \(subject) at character \(where_): \(reason)")
    }

    func text(_ range: Range<Int>) -> String {
        String(String.UnicodeScalarView(characters[range]))
    }

    func describeHere() -> String {
        guard !atEnd else { return "end of filter" }
        var end = index
        while end < characters.count, !characters[end].properties.isWhitespace, end - index < 24 { end += 1 }
        return "\"\(text(index..<max(end, index + 1)))\""
    }

    mutating func skipSpaces() {
        while index < characters.count, characters[index].properties.isWhitespace { index += 1 }
    }

    /// A run of characters that are not spaces, brackets, parentheses or quotes.
    mutating func word() -> String {
        let start = index
        while index < characters.count {
            let c = characters[index]
            if c.properties.isWhitespace || "()[]\"".unicodeScalars.contains(c) { break }
            index += 1
        }
        return text(start..<index)
    }

    /// Enters a parenthesis, `not` or value filter opened at `position`, refusing to nest
    /// deeper than ``SCIMFilter/maximumDepth``: the parser and every walk over the filter recurse.
    mutating func descend(at position: Int) throws(SCIMError) {
        depth += 1
        guard depth <= SCIMFilter.maximumDepth else {
            throw failure(
                "parentheses, \"not\" and value filters nest deeper than \(SCIMFilter.maximumDepth) levels", at: position)
        }
    }

    /// The whole text as one filter, within the bounds on depth and conditions.
    mutating func parseWhole(inValuePath: Bool) throws(SCIMError) -> SCIMFilter {
        let filter = try parseFilter(inValuePath: inValuePath)
        skipSpaces()
        guard atEnd else {
            throw failure("unexpected \(describeHere()) after a complete filter")
        }
        // `a or b and c` is written `(a or (b and c))`: precedence can add levels the text
        // did not have, and the description must parse back.
        guard filter.writtenDepth <= SCIMFilter.maximumDepth else {
            throw failure(
                "the filter nests deeper than \(SCIMFilter.maximumDepth) levels once the precedence of and/or is written out with parentheses",
                at: 0)
        }
        return filter
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
            try descend(at: open)
            defer { depth -= 1 }
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
        try descend(at: open)
        defer { depth -= 1 }
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
        conditions += 1
        guard conditions <= SCIMFilter.maximumConditions else {
            throw failure("the filter has more than \(SCIMFilter.maximumConditions) conditions")
        }
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
            let literal = text(start..<index)
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
