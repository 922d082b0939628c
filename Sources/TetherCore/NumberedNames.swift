/// Names called by small numbers, given in the order the names are first seen: a table that
/// refers to few distinct names many times keeps the numbers, and each name once.
///
/// A number is never given twice: a name forgotten leaves its number unused, and the name
/// seen again gets a new one.
public struct NumberedNames<Number: FixedWidthInteger & Sendable>: Sendable {
    private var names: [String?] = []
    private var numbers: [String: Number] = [:]

    public init() {}

    /// How many numbers were given, those of forgotten names included.
    public var count: Int { names.count }

    /// The number of `name`, if it has one.
    public func number(of name: String) -> Number? { numbers[name] }

    /// The number of `name`, given now if it has none.
    public mutating func number(_ name: String) -> Number {
        if let known = numbers[name] { return known }
        let next = Number(names.count)
        names.append(name)
        numbers[name] = next
        return next
    }

    /// The name numbered `number`; nil once forgotten.
    public subscript(number: Number) -> String? { names[Int(number)] }

    /// Forgets `name`; returns the number it had.
    @discardableResult
    public mutating func forget(_ name: String) -> Number? {
        guard let number = numbers.removeValue(forKey: name) else { return nil }
        names[Int(number)] = nil
        return number
    }
}
