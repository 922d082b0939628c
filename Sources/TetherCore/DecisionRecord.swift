import Foundation

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
/// random bits (20 hex digits). Unique per answer so a gateway's log line can be matched with
/// Tether's; the time in front lets the decision log find one by its time index, without an
/// index of its own.
public enum DecisionID {
    /// A fresh id for an answer given at `time`.
    public static func next(at time: Date) -> String {
        var generator = SystemRandomNumberGenerator()
        let random: UInt64 = generator.next()
        let extra = UInt64(truncatingIfNeeded: generator.next() as UInt16)
        return Hex.encode(prefix: "d_", high: (UInt64(milliseconds(time)) << 16) | extra, low: random)
    }

    /// The parts of an id: the milliseconds since 1970 and the 10 random bytes; nil when
    /// `text` is not a decision id.
    public static func parse(_ text: String) -> (milliseconds: Int64, nonce: [UInt8])? {
        guard text.hasPrefix("d_"), text.utf8.count == 34, let bytes = Hex.decode(text.dropFirst(2)) else { return nil }
        var milliseconds: Int64 = 0
        for byte in bytes[0..<6] { milliseconds = milliseconds << 8 | Int64(byte) }
        return (milliseconds, Array(bytes[6...]))
    }

    /// The random part of an id made by ``next(at:)``: the bytes after its time.
    public static func nonce(_ text: String) -> [UInt8]? { parse(text)?.nonce }

    /// `time` in whole milliseconds since 1970, as ids, the log and ``Timestamp`` round it.
    public static func milliseconds(_ time: Date) -> Int64 {
        Int64((time.timeIntervalSince1970 * 1000).rounded(.down))
    }
}
