import Foundation
import Testing

// Random and mutated inputs for the parser properties, shared by the test targets that need them.

/// SplitMix64: a small seeded generator, so that one seed gives the same inputs every time.
public struct SeededRandom: RandomNumberGenerator {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    public mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(max(bound, 1))) }

    public mutating func chance(_ percent: Int) -> Bool { below(100) < percent }

    public mutating func pick<T>(_ values: [T]) -> T { values[below(values.count)] }
}

/// The seed of one property run: `TETHER_PROPERTY_SEED` when set (to replay a failure), else a
/// fresh one. It is printed before the run, so even a crash leaves it in the log.
public func propertySeed(_ property: String) -> UInt64 {
    let seed = ProcessInfo.processInfo.environment["TETHER_PROPERTY_SEED"].flatMap { UInt64($0) }
        ?? UInt64.random(in: 0...UInt64.max)
    print("\(property): seed \(seed) (TETHER_PROPERTY_SEED=\(seed) replays it)")
    return seed
}

/// A property's failures: the first few are recorded in full, the rest counted, so that one
/// broken property does not print thousands of issues.
public struct PropertyFailures {
    public let seed: UInt64
    private(set) var count = 0
    public static let recordedInFull = 5

    public init(seed: UInt64) { self.seed = seed }

    /// Records `message` (with the seed) when `condition` is false.
    public mutating func check(
        _ condition: Bool, _ message: @autoclosure () -> String, sourceLocation: SourceLocation = #_sourceLocation
    ) {
        guard !condition else { return }
        count += 1
        if count <= Self.recordedInFull {
            Issue.record("seed \(seed): \(message())", sourceLocation: sourceLocation)
        }
    }

    /// Prints what the run saw and records how many failures were not shown; call once at
    /// the end of the property.
    public func finish(_ summary: String, sourceLocation: SourceLocation = #_sourceLocation) {
        print("\(summary) (seed \(seed), \(count) failing)")
        if count > Self.recordedInFull {
            Issue.record("seed \(seed): \(count - Self.recordedInFull) more failing cases", sourceLocation: sourceLocation)
        }
    }
}

/// Makes inputs the way a fuzzer's mutator does, without coverage feedback: random bytes,
/// random UTF-8, and valid inputs from a corpus with bytes flipped, cut, spliced, repeated or
/// replaced by grammar tokens, odd Unicode and huge numbers, plus deep nesting.
public struct InputMutator {
    /// What an input was made by, for failure messages.
    public enum Strategy: String, CaseIterable, Sendable {
        case randomBytes, randomText, mutated, nested
    }

    public var random: SeededRandom
    public let corpus: [[UInt8]]
    public let tokens: [[UInt8]]
    /// Opening and closing tokens to nest thousands deep, with a core to put inside.
    public let nesting: [(open: String, close: String, core: String)]

    public init(seed: UInt64, corpus: [String], tokens: [String], nesting: [(open: String, close: String, core: String)]) {
        random = SeededRandom(seed: seed)
        self.corpus = corpus.map { Array($0.utf8) }
        self.tokens = (tokens + Self.oddText).map { Array($0.utf8) }
        self.nesting = nesting
    }

    /// Scalars that trip text handling: combining marks, joiners, direction overrides, a BOM,
    /// non-characters, NUL, line separators, non-ASCII spaces and digits, look-alike quotes.
    public static let oddScalars: [Unicode.Scalar] = [
        "\u{0}", "\u{7F}", "\u{85}", "\u{A0}", "\u{301}", "\u{308}", "\u{200B}", "\u{200D}", "\u{202E}", "\u{2028}",
        "\u{2029}", "\u{3000}", "\u{FEFF}", "\u{FFFD}", "\u{FFFF}", "\u{FF02}", "\u{201C}", "\u{0660}", "\u{FF11}",
        "\u{1F469}", "\u{1F3FD}", "\u{E0001}", "\u{10FFFF}", "\u{D7FF}", "İ", "ß", "ﬁ", "Σ", "\t", "\r", "\n",
    ]

    /// Odd text to splice in: the scalars above, combining marks after quotes and brackets,
    /// escapes of lone surrogates, and numbers too large for any type.
    public static let oddText: [String] = oddScalars.map { String($0) } + [
        "\"\u{301}", "(\u{301}", "[\u{301}", "]\u{301}", ")\u{301}", "\u{301}\"", "\\u", "\\uD800", "\\uDC00", "\\uD800\\u0041",
        "\\\\", "\\\"", "1e999999", "-1e-999999", "99999999999999999999999999", "-9223372036854775809",
        "9223372036854775807", "0.0000000000000000000000000001", String(repeating: "9", count: 400), "1.", "-", "0x10",
        "NaN", "Infinity", "-0", "\u{1F469}\u{200D}\u{1F469}\u{200D}\u{1F467}",
    ]

    /// The next input and how it was made.
    public mutating func next() -> (bytes: [UInt8], strategy: Strategy) {
        switch random.below(100) {
        case 0..<10: return (randomBytes(), .randomBytes)
        case 10..<20: return (randomText(), .randomText)
        case 20..<94: return (mutated(), .mutated)
        default: return (nested(), .nested)
        }
    }

    public mutating func randomBytes() -> [UInt8] {
        (0..<random.below(80)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
    }

    public mutating func randomText() -> [UInt8] {
        var text = String.UnicodeScalarView()
        for _ in 0..<random.below(60) {
            switch random.below(4) {
            case 0: text.append(random.pick(Self.oddScalars))
            case 1: text.append(Unicode.Scalar(UInt8(32 + random.below(95))))
            default:
                let value = UInt32(random.below(0x11_0000))
                text.append(Unicode.Scalar(value) ?? "\u{FFFD}")
            }
        }
        return Array(String(text).utf8)
    }

    public mutating func mutated() -> [UInt8] {
        var bytes = random.pick(corpus)
        for _ in 0..<(1 + random.below(4)) {
            bytes = mutate(bytes)
        }
        return bytes
    }

    public mutating func mutate(_ input: [UInt8]) -> [UInt8] {
        var bytes = input
        let position = random.below(bytes.count + 1)
        switch random.below(9) {
        case 0 where !bytes.isEmpty:  // flip one bit
            let index = min(position, bytes.count - 1)
            bytes[index] ^= UInt8(1 << random.below(8))
        case 1 where !bytes.isEmpty:  // replace a byte by an interesting one
            let index = min(position, bytes.count - 1)
            bytes[index] = random.pick([0x00, 0x0A, 0x20, 0x22, 0x27, 0x28, 0x29, 0x2C, 0x2E, 0x3A, 0x5B, 0x5C, 0x5D, 0x7B, 0x7D, 0x7F, 0x80, 0xC3, 0xFF])
        case 2:  // insert a grammar token or odd text
            bytes.insert(contentsOf: random.pick(tokens), at: position)
        case 3 where !bytes.isEmpty:  // delete a range
            let end = min(bytes.count, position + 1 + random.below(16))
            bytes.removeSubrange(min(position, bytes.count - 1)..<end)
        case 4:  // truncate
            bytes.removeSubrange(position...)
        case 5:  // splice: this input's head, another's tail
            let other = random.pick(corpus)
            bytes = Array(bytes[..<position]) + other[random.below(other.count + 1)...]
        case 6 where !bytes.isEmpty:  // repeat a slice
            let start = min(position, bytes.count - 1)
            let slice = bytes[start..<min(bytes.count, start + 1 + random.below(24))]
            let copies = random.chance(10) ? 200 : 1 + random.below(8)
            bytes.insert(contentsOf: Array(repeating: Array(slice), count: copies).joined(), at: start)
        case 7 where !bytes.isEmpty:  // swap two bytes
            let other = random.below(bytes.count)
            bytes.swapAt(min(position, bytes.count - 1), other)
        default:  // overwrite with a token
            let token = random.pick(tokens)
            let end = min(bytes.count, position + token.count)
            bytes.replaceSubrange(position..<end, with: token)
        }
        return bytes
    }

    public mutating func nested() -> [UInt8] {
        let shape = random.pick(nesting)
        let depth = random.pick([33, 64, 500, 10_000, 20_000])
        var text = String(repeating: shape.open, count: depth) + shape.core
        if random.chance(75) { text += String(repeating: shape.close, count: depth) }
        return Array(text.utf8)
    }
}

extension Array where Element == UInt8 {
    /// The bytes as a Swift literal for a failure message, cut to about `limit` characters.
    public func quoted(limit: Int = 300) -> String {
        let scalars = String(decoding: prefix(limit * 4), as: UTF8.self).unicodeScalars
        let escaped = scalars.prefix(limit).map { $0.escaped(asASCII: true) }.joined()
        return count > limit ? "\"\(escaped.prefix(limit))…\" (\(count) bytes)" : "\"\(escaped)\""
    }
}
