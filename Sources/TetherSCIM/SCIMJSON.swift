import Foundation

/// A JSON value as SCIM documents carry it.
///
/// Tether owns this small type rather than using `JSONSerialization`: it is `Sendable`, tells
/// booleans from numbers (which `NSNumber` blurs), keeps the order of object members (so
/// answers read like the RFC's examples), and its parser reports where a document is wrong
/// and refuses duplicate or over-deep input instead of guessing.
public enum SCIMJSON: Sendable, Hashable {
    case null
    case bool(Bool)
    /// A number without fraction or exponent that fits 64 bits.
    case integer(Int64)
    case decimal(Double)
    case string(String)
    case array([SCIMJSON])
    case object(Object)

    /// A JSON object: members in order, looked up by name case-insensitively as SCIM
    /// attribute names are (RFC 7643 §2.1).
    public struct Object: Sendable, Hashable, Sequence {
        /// One name and value.
        public struct Member: Sendable, Hashable {
            /// The member name as written.
            public var name: String
            /// The member value.
            public var value: SCIMJSON

            /// A member.
            public init(_ name: String, _ value: SCIMJSON) {
                self.name = name
                self.value = value
            }
        }

        /// The members, in order.
        public private(set) var members: [Member]

        /// An object from members, in order.
        public init(_ members: [Member] = []) { self.members = members }

        /// Builds an object from pairs, in order.
        public init(_ pairs: KeyValuePairs<String, SCIMJSON>) {
            members = pairs.map { Member($0.key, $0.value) }
        }

        /// True when the object has no members.
        public var isEmpty: Bool { members.isEmpty }
        /// The number of members.
        public var count: Int { members.count }
        /// The member names, in order.
        public var names: [String] { members.map(\.name) }

        /// Iterates the members in order.
        public func makeIterator() -> IndexingIterator<[Member]> { members.makeIterator() }

        /// The index of the member named `name`, compared case-insensitively.
        public func index(of name: String) -> Int? {
            if let exact = members.firstIndex(where: { $0.name == name }) { return exact }
            return members.firstIndex { $0.name.caseInsensitiveEquals(name) }
        }

        /// The value of the member named `name` (case-insensitive); nil when absent.
        public subscript(_ name: String) -> SCIMJSON? {
            get { index(of: name).map { members[$0].value } }
            set {
                if let index = index(of: name) {
                    if let newValue {
                        members[index] = Member(name, newValue)
                    } else {
                        members.remove(at: index)
                    }
                } else if let newValue {
                    members.append(Member(name, newValue))
                }
            }
        }

        /// Objects are equal when they hold the same names (exactly) with equal values, in any order.
        public static func == (lhs: Object, rhs: Object) -> Bool {
            guard lhs.members.count == rhs.members.count else { return false }
            for member in lhs.members {
                guard let other = rhs.members.first(where: { $0.name == member.name }), other.value == member.value
                else { return false }
            }
            return true
        }

        /// Hashes without regard to member order, consistently with `==`.
        public func hash(into hasher: inout Hasher) {
            hasher.combine(members.count)
            var combined = 0
            for member in members {
                var inner = Hasher()
                inner.combine(member.name)
                inner.combine(member.value)
                combined ^= inner.finalize()
            }
            hasher.combine(combined)
        }
    }

    /// The object, for an object value.
    public var objectValue: Object? {
        if case .object(let object) = self { return object }
        return nil
    }

    /// The elements, for an array value.
    public var arrayValue: [SCIMJSON]? {
        if case .array(let array) = self { return array }
        return nil
    }

    /// The string, for a string value.
    public var stringValue: String? {
        if case .string(let string) = self { return string }
        return nil
    }

    /// The boolean, for a boolean value.
    public var boolValue: Bool? {
        if case .bool(let bool) = self { return bool }
        return nil
    }

    /// The value as a number, for integers and decimals.
    public var numberValue: Double? {
        switch self {
        case .integer(let value): Double(value)
        case .decimal(let value): value
        default: nil
        }
    }

    /// True for `null`.
    public var isNull: Bool { self == .null }

    /// The member `name` of an object (case-insensitive); nil for anything else.
    public subscript(_ name: String) -> SCIMJSON? { objectValue?[name] }

    /// A short word for the kind of value, for error messages.
    public var kindDescription: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .integer, .decimal: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

extension SCIMJSON: ExpressibleByStringLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    /// A string value.
    public init(stringLiteral value: String) { self = .string(value) }
    /// A boolean value.
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    /// An integer value.
    public init(integerLiteral value: Int64) { self = .integer(value) }
    /// An array value.
    public init(arrayLiteral elements: SCIMJSON...) { self = .array(elements) }
    /// An object value, members in the literal's order.
    public init(dictionaryLiteral elements: (String, SCIMJSON)...) {
        self = .object(Object(elements.map { Object.Member($0.0, $0.1) }))
    }
    /// `null`.
    public init(nilLiteral: ()) { self = .null }
}

extension String {
    /// Case-insensitive equality as SCIM compares attribute names and keywords.
    func caseInsensitiveEquals(_ other: String) -> Bool {
        if self == other { return true }
        return compare(other, options: [.caseInsensitive]) == .orderedSame
    }
}
