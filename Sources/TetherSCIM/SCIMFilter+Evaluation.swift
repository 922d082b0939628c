import Foundation

extension SCIMFilter {
    /// Checks the filter against a resource type's schemas and prepares it for evaluation.
    ///
    /// Unknown attributes and comparisons the attribute's type cannot make (`gt` on a
    /// boolean, `co` on a number, a number compared to a string) are `400 invalidFilter`:
    /// a bad filter never silently matches nothing.
    public func compile(for type: SCIMResourceType) throws(SCIMError) -> CompiledSCIMFilter {
        CompiledSCIMFilter(root: try CompiledSCIMFilter.node(self, type: type, within: nil))
    }

    /// Compiles against several resource types (a root `/.search`): an attribute need only
    /// exist in one of them; for the others it is unassigned (`pr` false, `ne` true).
    static func compileAcross(_ filter: SCIMFilter, types: [SCIMResourceType]) throws(SCIMError) -> [String: CompiledSCIMFilter] {
        for path in filter.attributePaths where !types.contains(where: { $0.resolve(path)?.attribute != nil }) {
            throw SCIMError.invalidFilter("invalid filter: unknown attribute \"\(path)\" for \(types.map(\.name).joined(separator: " and ")) resources")
        }
        var compiled: [String: CompiledSCIMFilter] = [:]
        for type in types {
            compiled[type.name] = CompiledSCIMFilter(root: try CompiledSCIMFilter.node(filter, type: type, within: nil, lenient: true))
        }
        return compiled
    }

    /// The top-level attribute paths the filter names (not those inside value filters).
    var attributePaths: [SCIMAttributePath] {
        switch self {
        case .and(let a, let b), .or(let a, let b): a.attributePaths + b.attributePaths
        case .not(let inner): inner.attributePaths
        case .present(let path), .compare(let path, _, _), .valuePath(let path, _): [path]
        }
    }
}

/// A filter resolved against a resource type, ready to test resources.
public struct CompiledSCIMFilter: Sendable {
    indirect enum Node: Sendable, Equatable {
        case constant(Bool)
        case and(Node, Node)
        case or(Node, Node)
        case not(Node)
        case present(ResolvedPath)
        case compare(ResolvedPath, SCIMFilter.Operator, SCIMJSON)
        case valuePath(ResolvedPath, Node)
    }

    let root: Node

    /// Whether `resource` (its full representation, `meta` included) matches.
    public func matches(_ resource: SCIMJSON.Object) -> Bool {
        Self.evaluate(root, in: resource, element: nil)
    }

    /// An attribute no resource has: what a name unknown to one of several types resolves to.
    static let unassigned = ResolvedPath(extensionURN: nil, attribute: SCIMAttribute("\u{0}", description: ""), subAttribute: nil)

    static func node(_ filter: SCIMFilter, type: SCIMResourceType, within: ResolvedPath?, lenient: Bool = false) throws(SCIMError) -> Node {
        func unknown(_ path: SCIMAttributePath) -> Bool { lenient && within == nil && type.resolve(path)?.attribute == nil }
        switch filter {
        case .and(let a, let b):
            return .and(try node(a, type: type, within: within, lenient: lenient), try node(b, type: type, within: within, lenient: lenient))
        case .or(let a, let b):
            return .or(try node(a, type: type, within: within, lenient: lenient), try node(b, type: type, within: within, lenient: lenient))
        case .not(let inner): return .not(try node(inner, type: type, within: within, lenient: lenient))
        case .present(let path):
            if unknown(path) { return .present(unassigned) }
            return .present(try resolve(path, type: type, within: within))
        case .compare(let path, let op, let value):
            if unknown(path) { return .compare(unassigned, op, value) }
            let resolved = try resolve(path, type: type, within: within)
            try check(op, value, on: resolved)
            return .compare(resolved, op, value)
        case .valuePath(let path, let inner):
            if unknown(path) { return .constant(false) }
            let resolved = try resolve(path, type: type, within: within)
            guard let attribute = resolved.attribute, resolved.subAttribute == nil, attribute.type == .complex else {
                throw SCIMError.invalidFilter("invalid filter: \"\(path)\" is not a complex attribute, so it cannot take a value filter")
            }
            return .valuePath(resolved, try node(inner, type: type, within: resolved))
        }
    }

    static func resolve(_ path: SCIMAttributePath, type: SCIMResourceType, within: ResolvedPath?) throws(SCIMError) -> ResolvedPath {
        if let within, let parent = within.attribute {
            // Inside `attr[...]`, names are the attribute's sub-attributes.
            guard path.schema == nil, path.subAttribute == nil, let name = path.attribute, let sub = parent.subAttribute(name) else {
                throw SCIMError.invalidFilter("invalid filter: unknown attribute \"\(path)\" inside the value filter of \"\(parent.name)\"")
            }
            return ResolvedPath(extensionURN: nil, attribute: sub, subAttribute: nil)
        }
        guard let resolved = type.resolve(path), resolved.attribute != nil else {
            throw SCIMError.invalidFilter("invalid filter: unknown attribute \"\(path)\" for \(type.name) resources")
        }
        return resolved
    }

    /// The attribute whose values a comparison uses: for a complex attribute without a
    /// sub-attribute, its `value` sub-attribute (RFC 7644 §3.4.2.2).
    static func comparedDefinition(_ path: ResolvedPath) -> SCIMAttribute? {
        guard let leaf = path.leaf else { return nil }
        if leaf.type == .complex { return leaf.subAttribute("value") }
        return leaf
    }

    static func check(_ op: SCIMFilter.Operator, _ value: SCIMJSON, on path: ResolvedPath) throws(SCIMError) {
        guard let definition = comparedDefinition(path) else {
            throw SCIMError.invalidFilter("invalid filter: \"\(path.description)\" is complex; compare one of its sub-attributes")
        }
        let name = path.description
        if value == .null {
            guard op == .eq || op == .ne else {
                throw SCIMError.invalidFilter("invalid filter: only eq and ne compare with null (\(name) \(op.rawValue) null)")
            }
            return
        }
        switch definition.type {
        case .boolean:
            guard op == .eq || op == .ne else {
                throw SCIMError.invalidFilter("invalid filter: \(name) is a boolean; only eq and ne apply, not \(op.rawValue)")
            }
            guard value.boolValue != nil else {
                throw SCIMError.invalidFilter("invalid filter: \(name) is a boolean; compare it with true or false, not \(value.kindDescription)")
            }
        case .binary:
            throw SCIMError.invalidFilter("invalid filter: \(name) is binary and cannot be compared")
        case .integer, .decimal:
            guard [.eq, .ne, .gt, .ge, .lt, .le].contains(op) else {
                throw SCIMError.invalidFilter("invalid filter: \(name) is a number; \(op.rawValue) applies only to strings")
            }
            guard value.numberValue != nil else {
                throw SCIMError.invalidFilter("invalid filter: \(name) is a number; compare it with a number, not \(value.kindDescription)")
            }
        case .dateTime:
            guard let text = value.stringValue else {
                throw SCIMError.invalidFilter("invalid filter: \(name) is a dateTime; compare it with a quoted date-time, not \(value.kindDescription)")
            }
            if [.eq, .ne, .gt, .ge, .lt, .le].contains(op), parseDate(text) == nil {
                throw SCIMError.invalidFilter("invalid filter: \"\(text)\" is not an RFC 3339 date-time for \(name)")
            }
        case .string, .reference:
            guard value.stringValue != nil else {
                throw SCIMError.invalidFilter("invalid filter: \(name) is a string; compare it with a quoted string, not \(value.kindDescription)")
            }
        case .complex:
            throw SCIMError.invalidFilter("invalid filter: \"\(name)\" is complex; compare one of its sub-attributes")
        }
    }

    static func parseDate(_ text: String) -> Date? {
        let fractional = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        if let date = try? fractional.parse(text) { return date }
        return try? Date.ISO8601FormatStyle().parse(text)
    }

    // MARK: Evaluation

    /// The scalar values at `path` in `resource`, or in `element` inside a value filter.
    static func values(at path: ResolvedPath, in resource: SCIMJSON.Object, element: SCIMJSON.Object?) -> [SCIMJSON] {
        guard let attribute = path.attribute else { return [] }
        let container: SCIMJSON.Object?
        if let element {
            container = element
        } else if let urn = path.extensionURN {
            container = resource[urn]?.objectValue
        } else {
            container = resource
        }
        guard let value = container?[attribute.name] else { return [] }
        var items: [SCIMJSON] = value.arrayValue ?? [value]
        if let sub = path.subAttribute {
            items = items.compactMap { $0.objectValue?[sub.name] }
            items = items.flatMap { $0.arrayValue ?? [$0] }
        } else if attribute.type == .complex {
            return items
        }
        return items.filter { $0 != .null }
    }

    static func isPresent(_ value: SCIMJSON) -> Bool {
        switch value {
        case .null: false
        case .string(let text): !text.isEmpty
        case .array(let items): items.contains(where: isPresent)
        case .object(let object): object.members.contains { isPresent($0.value) }
        default: true
        }
    }

    static func evaluate(_ node: Node, in resource: SCIMJSON.Object, element: SCIMJSON.Object?) -> Bool {
        switch node {
        case .constant(let value): return value
        case .and(let a, let b): return evaluate(a, in: resource, element: element) && evaluate(b, in: resource, element: element)
        case .or(let a, let b): return evaluate(a, in: resource, element: element) || evaluate(b, in: resource, element: element)
        case .not(let inner): return !evaluate(inner, in: resource, element: element)
        case .present(let path):
            return values(at: path, in: resource, element: element).contains(where: isPresent)
        case .valuePath(let path, let inner):
            return values(at: path, in: resource, element: element).contains { item in
                guard let object = item.objectValue else { return false }
                return evaluate(inner, in: resource, element: object)
            }
        case .compare(let path, let op, let expected):
            var found = values(at: path, in: resource, element: element)
            if path.leaf?.type == .complex, let valueName = path.leaf?.subAttribute("value")?.name {
                found = found.compactMap { $0.objectValue?[valueName] }.filter { $0 != .null }
            }
            guard let definition = comparedDefinition(path) else { return false }
            if expected == .null {
                let present = found.contains(where: isPresent)
                return op == .eq ? !present : present
            }
            // `ne` is the negation of `eq`: true when no value equals (also when absent).
            if op == .ne {
                return !found.contains { compare($0, .eq, expected, definition) }
            }
            return found.contains { compare($0, op, expected, definition) }
        }
    }

    static func compare(_ actual: SCIMJSON, _ op: SCIMFilter.Operator, _ expected: SCIMJSON, _ definition: SCIMAttribute) -> Bool {
        switch definition.type {
        case .boolean:
            guard let a = actual.boolValue, let b = expected.boolValue else { return false }
            return op == .eq ? a == b : a != b
        case .integer, .decimal:
            guard let a = actual.numberValue, let b = expected.numberValue else { return false }
            return ordered(a, b, op)
        case .dateTime:
            guard let a = actual.stringValue, let b = expected.stringValue else { return false }
            if [.co, .sw, .ew].contains(op) { return stringCompare(a, b, op, caseExact: false) }
            guard let da = parseDate(a), let db = parseDate(b) else { return false }
            return ordered(da, db, op)
        case .string, .reference, .binary, .complex:
            guard let a = actual.stringValue, let b = expected.stringValue else { return false }
            return stringCompare(a, b, op, caseExact: definition.caseExact)
        }
    }

    static func ordered<T: Comparable>(_ a: T, _ b: T, _ op: SCIMFilter.Operator) -> Bool {
        switch op {
        case .eq: a == b
        case .ne: a != b
        case .gt: a > b
        case .ge: a >= b
        case .lt: a < b
        case .le: a <= b
        case .co, .sw, .ew: false
        }
    }

    static func stringCompare(_ a: String, _ b: String, _ op: SCIMFilter.Operator, caseExact: Bool) -> Bool {
        let x = caseExact ? a : a.lowercased()
        let y = caseExact ? b : b.lowercased()
        switch op {
        case .co: return x.contains(y)
        case .sw: return x.hasPrefix(y)
        case .ew: return x.hasSuffix(y)
        default: return ordered(x, y, op)
        }
    }
}
