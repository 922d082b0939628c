import Foundation

/// A SCIM PATCH request (RFC 7644 §3.5.2): operations applied in order, all or none.
///
/// What real clients send is accepted: operation names in any case (`Replace`, Entra),
/// `"True"`/`"False"` for booleans (Entra), operations without a path whose value holds the
/// attributes (`{"op":"replace","value":{"active":false}}`, Okta), and value-filter paths
/// such as `members[value eq "…"]` or `emails[type eq "work"].value`.
public struct SCIMPatch: Sendable, Hashable {
    /// The PatchOp message schema.
    public static let schema = "urn:ietf:params:scim:api:messages:2.0:PatchOp"

    /// `add`, `remove` or `replace`.
    public enum Op: String, Sendable, Hashable {
        case add, remove, replace
    }

    /// The target of an operation: `attrPath` or `attrPath[valFilter][.subAttr]`.
    public struct Path: Sendable, Hashable, CustomStringConvertible {
        /// The attribute (with a sub-attribute when there is no filter), or a bare extension URN.
        public var attribute: SCIMAttributePath
        /// The value filter between `[` and `]`, if any.
        public var filter: SCIMFilter?
        /// The sub-attribute after a value filter (`.value` in `emails[type eq "work"].value`).
        public var subAttribute: String?
        /// The path as the client wrote it.
        public var text: String

        /// The path as the client wrote it.
        public var description: String { text }

        /// Parses a PATCH path; a malformed one is `400 invalidPath`.
        public static func parse(_ text: String, knownSchemas: [String]) throws(SCIMError) -> Path {
            let trimmed = text.trimmingCharacters(in: .whitespaces)
            // Scalars, not characters: a combining mark after `[`, `"` or `]` must not hide it.
            let scalars = Array(trimmed.unicodeScalars)
            func string(_ range: Range<Int>) -> String { String(String.UnicodeScalarView(scalars[range])) }
            guard let open = scalars.firstIndex(of: "[") else {
                guard let attribute = SCIMAttributePath.parse(trimmed, knownSchemas: knownSchemas) else {
                    throw SCIMError.invalidPath("\"\(text)\" is not an attribute path")
                }
                return Path(attribute: attribute, filter: nil, subAttribute: nil, text: text)
            }
            let head = string(0..<open)
            guard let attribute = SCIMAttributePath.parse(head, knownSchemas: knownSchemas), attribute.attribute != nil,
                attribute.subAttribute == nil
            else {
                throw SCIMError.invalidPath("\"\(head)\" before \"[\" in \"\(text)\" is not an attribute")
            }
            // The closing bracket, skipping brackets inside quoted strings.
            var index = open + 1
            var inString = false
            var escaped = false
            var close: Int?
            while index < scalars.count {
                let c = scalars[index]
                if inString {
                    if escaped { escaped = false } else if c == "\\" { escaped = true } else if c == "\"" { inString = false }
                } else if c == "\"" {
                    inString = true
                } else if c == "]" {
                    close = index
                    break
                }
                index += 1
            }
            guard let close else { throw SCIMError.invalidPath("the value filter in \"\(text)\" is not closed with \"]\"") }
            let filter: SCIMFilter
            do {
                filter = try SCIMFilter.parseValueFilter(string(open + 1..<close), offset: open + 1, whole: text)
            } catch {
                throw SCIMError.invalidPath(error.detail)
            }
            let rest = string(close + 1..<scalars.count)
            var sub: String?
            if !rest.isEmpty {
                guard rest.hasPrefix("."), SCIMAttributePath.isAttributeName(rest.dropFirst()) else {
                    throw SCIMError.invalidPath("\"\(rest)\" after the value filter in \"\(text)\" is not \".subAttribute\"")
                }
                sub = String(rest.dropFirst())
            }
            return Path(attribute: attribute, filter: filter, subAttribute: sub, text: text)
        }
    }

    /// One operation.
    public struct Operation: Sendable, Hashable {
        /// `add`, `remove` or `replace`.
        public var op: Op
        /// The target; nil means the value holds the attributes.
        public var path: Path?
        /// The value to add or replace with (or, for Entra's remove, the values to remove).
        public var value: SCIMJSON?

        /// An operation.
        public init(op: Op, path: Path? = nil, value: SCIMJSON? = nil) {
            self.op = op
            self.path = path
            self.value = value
        }
    }

    /// The operations, applied in order.
    public var operations: [Operation]

    /// A request from its operations.
    public init(operations: [Operation]) { self.operations = operations }

    /// Reads a PatchOp request body; anything malformed is `400 invalidSyntax` (or
    /// `invalidPath` for a bad path, `noTarget` for a remove without a path).
    public static func parse(_ body: SCIMJSON, knownSchemas: [String]) throws(SCIMError) -> SCIMPatch {
        guard case .object(let object) = body else {
            throw SCIMError.invalidSyntax("a PATCH body must be a JSON object, not \(body.kindDescription)")
        }
        guard case .array(let schemas)? = object["schemas"],
            schemas.contains(where: { $0.stringValue?.caseInsensitiveEquals(schema) ?? false })
        else {
            throw SCIMError.invalidSyntax("a PATCH body must have schemas [\"\(schema)\"]")
        }
        guard case .array(let items)? = object["Operations"] else {
            throw SCIMError.invalidSyntax("a PATCH body must have an \"Operations\" array")
        }
        guard !items.isEmpty else { throw SCIMError.invalidSyntax("\"Operations\" is empty") }
        var operations: [Operation] = []
        for (index, item) in items.enumerated() {
            let number = index + 1
            guard case .object(let fields) = item else {
                throw SCIMError.invalidSyntax("operation \(number) must be an object")
            }
            guard let opName = fields["op"]?.stringValue, let op = Op(rawValue: opName.lowercased()) else {
                throw SCIMError.invalidSyntax("operation \(number): \"op\" must be \"add\", \"remove\" or \"replace\"")
            }
            var path: Path?
            if let pathValue = fields["path"], pathValue != .null {
                guard let text = pathValue.stringValue, !text.trimmingCharacters(in: .whitespaces).isEmpty else {
                    throw SCIMError.invalidPath("operation \(number): \"path\" must be a non-empty string")
                }
                do {
                    path = try Path.parse(text, knownSchemas: knownSchemas)
                } catch {
                    throw SCIMError(status: 400, error.scimType, "operation \(number): \(error.detail)")
                }
            }
            let value = fields["value"]
            switch op {
            case .remove:
                guard path != nil else { throw SCIMError.noTarget("operation \(number): remove needs a \"path\"") }
            case .add, .replace:
                guard let value, value != .null else {
                    throw SCIMError.invalidSyntax("operation \(number): \(op.rawValue) needs a \"value\"")
                }
                if path == nil, value.objectValue == nil {
                    throw SCIMError.invalidSyntax("operation \(number): without a path, the value must be an object of attributes")
                }
            }
            operations.append(Operation(op: op, path: path, value: value))
        }
        return SCIMPatch(operations: operations)
    }
}
