import Foundation
import Synchronization

/// One recorded answer to `POST /v1/check` (SPEC §16): the question, the answer and what it
/// came from.
public struct DecisionRecord: Sendable, Hashable {
    /// The decision id the caller was given (``DecisionID``).
    public var id: String
    /// When it was answered, to the millisecond (the id carries the same millisecond).
    public var time: Date
    public var subject: String
    public var agent: String
    public var scope: String
    public var resource: String
    public var allowed: Bool
    /// The grant that allowed it; nil for a deny.
    public var grant: String?
    /// The policy of that grant; nil for a deny.
    public var policy: String?
    /// The hash of the policy set in force.
    public var policySet: String
    /// The check index's revision: the audit seq of the last commit the answer reflects.
    public var revision: Int
    /// The name of the bearer token the caller presented (`check.tokenFile`).
    public var caller: String

    public init(
        id: String, time: Date, subject: String, agent: String, scope: String, resource: String, allowed: Bool,
        grant: String? = nil, policy: String? = nil, policySet: String, revision: Int, caller: String
    ) {
        self.id = id
        self.time = time
        self.subject = subject
        self.agent = agent
        self.scope = scope
        self.resource = resource
        self.allowed = allowed
        self.grant = grant
        self.policy = policy
        self.policySet = policySet
        self.revision = revision
        self.caller = caller
    }

    /// The JSON Lines export of the decision: keys sorted, no white space, `grant` and `policy`
    /// left out for a deny (as the check's answer leaves them out).
    public var line: String {
        var out = "{\"agent\":"
        CanonicalJSON.appendString(agent, to: &out)
        out += allowed ? ",\"allowed\":true,\"caller\":" : ",\"allowed\":false,\"caller\":"
        CanonicalJSON.appendString(caller, to: &out)
        out += ",\"decision\":"
        CanonicalJSON.appendString(id, to: &out)
        if let grant {
            out += ",\"grant\":"
            CanonicalJSON.appendString(grant, to: &out)
        }
        if let policy {
            out += ",\"policy\":"
            CanonicalJSON.appendString(policy, to: &out)
        }
        out += ",\"policySet\":"
        CanonicalJSON.appendString(policySet, to: &out)
        out += ",\"resource\":"
        CanonicalJSON.appendString(resource, to: &out)
        out += ",\"revision\":\(revision),\"scope\":"
        CanonicalJSON.appendString(scope, to: &out)
        out += ",\"subject\":"
        CanonicalJSON.appendString(subject, to: &out)
        out += ",\"time\":"
        CanonicalJSON.appendString(Timestamp.string(time), to: &out)
        return out + "}"
    }
}

/// Decision ids: `d_`, the answer's time in milliseconds since 1970 (12 hex digits), then 80
/// bits (20 hex digits) that no two answers of one process share. Unique per answer so a
/// gateway's log line can be matched with Tether's; the time in front lets the decision log
/// find one by its time index, without an index of its own.
///
/// The 80 bits are a counter run through a bijective mix (SplitMix64's finaliser) from a
/// random start, with 16 random bits of the process: distinct within a process by
/// construction, and as unlikely to meet another process's as random ids are. Making one
/// costs no system call, which a fresh random number per check (two `getrandom` calls)
/// did, on the path every check takes.
public enum DecisionID {
    private static let start: (counter: UInt64, extra: UInt64) = {
        var generator = SystemRandomNumberGenerator()
        return (generator.next(), UInt64(generator.next() as UInt16))
    }()
    private static let counter = Atomic<UInt64>(0)

    /// A fresh id for an answer given at `time`.
    public static func next(at time: Date) -> String {
        let count = counter.wrappingAdd(1, ordering: .relaxed).newValue
        return Hex.encode(
            prefix: "d_", high: (UInt64(milliseconds(time)) << 16) | start.extra, low: mix(start.counter &+ count))
    }

    /// SplitMix64's output function: a bijection of 64-bit values that scatters neighbours.
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// The parts of an id: the milliseconds since 1970 and the 10 bytes after them; nil when
    /// `text` is not a decision id.
    public static func parse(_ text: String) -> (milliseconds: Int64, nonce: [UInt8])? {
        guard let (high, low) = bits(text) else { return nil }
        let nonce = [UInt8(truncatingIfNeeded: high >> 8), UInt8(truncatingIfNeeded: high)]
            + (0..<8).map { UInt8(truncatingIfNeeded: low >> (56 - 8 * $0)) }
        return (Int64(bitPattern: high >> 16), nonce)
    }

    /// The id's 128 bits (the time in the top 48 of `high`), read without allocating; nil
    /// when `text` is not a decision id.
    public static func bits(_ text: String) -> (high: UInt64, low: UInt64)? {
        var text = text
        return text.withUTF8 { utf8 -> (UInt64, UInt64)? in
            guard utf8.count == 34, utf8[0] == UInt8(ascii: "d"), utf8[1] == UInt8(ascii: "_") else { return nil }
            var high: UInt64 = 0
            var low: UInt64 = 0
            for index in 0..<32 {
                guard let digit = Hex.value(of: utf8[2 + index]) else { return nil }
                if index < 16 { high = high << 4 | UInt64(digit) } else { low = low << 4 | UInt64(digit) }
            }
            return (high, low)
        }
    }

    /// The bytes after the time of an id made by ``next(at:)``.
    public static func nonce(_ text: String) -> [UInt8]? { parse(text)?.nonce }

    /// `time` in whole milliseconds since 1970, as ids, the log and ``Timestamp`` round it.
    public static func milliseconds(_ time: Date) -> Int64 {
        Int64((time.timeIntervalSince1970 * 1000).rounded(.down))
    }
}
