import Crypto

/// One entitlement: `subject` may use `agent` with `scope` on `resource` (SPEC §1).
public struct Grant: Sendable, Hashable, Codable, Comparable {
    public var subject: String
    public var agent: String
    public var scope: String
    public var resource: String

    public init(subject: String, agent: String, scope: String, resource: String) {
        self.subject = subject
        self.agent = agent
        self.scope = scope
        self.resource = resource
    }

    /// `g_` + the first 32 hex digits of SHA-256 of `subject\nagent\nscope\nresource`.
    public var id: String { key.id }

    /// The 128 bits the id spells, computed without building the id's text: full
    /// reconciliations compare a million of these.
    public var key: GrantKey {
        var hasher = SHA256()
        Self.feed(subject, to: &hasher)
        hasher.update(data: Self.newline)
        Self.feed(agent, to: &hasher)
        hasher.update(data: Self.newline)
        Self.feed(scope, to: &hasher)
        hasher.update(data: Self.newline)
        Self.feed(resource, to: &hasher)
        return hasher.finalize().withUnsafeBytes { bytes in
            GrantKey(
                high: UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                low: UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
        }
    }

    private static let newline: [UInt8] = [0x0A]

    private static func feed(_ text: String, to hasher: inout SHA256) {
        var text = text
        text.withUTF8 { hasher.update(bufferPointer: UnsafeRawBufferPointer($0)) }
    }

    /// Whether this grant covers a request for `resource`: exact, or by prefix when the
    /// grant's resource ends in `*`.
    public func covers(resource requested: String) -> Bool {
        if resource.hasSuffix("*") { return requested.hasPrefix(resource.dropLast()) }
        return resource == requested
    }

    /// By subject, agent, scope, then resource. Field by field, without building tuples: a
    /// cold start sorts a million grants.
    public static func < (lhs: Grant, rhs: Grant) -> Bool {
        if lhs.subject != rhs.subject { return lhs.subject < rhs.subject }
        if lhs.agent != rhs.agent { return lhs.agent < rhs.agent }
        if lhs.scope != rhs.scope { return lhs.scope < rhs.scope }
        return lhs.resource < rhs.resource
    }
}

/// What justifies a grant: the policy, the policy set, and the facts and events it rests on.
public struct Lineage: Sendable, Hashable, Codable {
    /// The policy id, or `agent:<id>` for an autonomous agent's declared grant.
    public var policy: String
    /// `sha256:…` of the policy set in force when the grant was derived.
    public var policySet: String
    /// The identity the grant derives from (nil for autonomous agents).
    public var identity: IdentityID?
    /// Human-readable facts used: `memberOf support`, `department=Support`.
    public var facts: [String]
    /// The version of each source's record that was applied.
    public var versions: [String: String]
    /// The last event applied from each source.
    public var events: [String: String]

    public init(
        policy: String, policySet: String, identity: IdentityID? = nil, facts: [String] = [],
        versions: [String: String] = [:], events: [String: String] = [:]
    ) {
        self.policy = policy
        self.policySet = policySet
        self.identity = identity
        self.facts = facts
        self.versions = versions
        self.events = events
    }
}

extension Lineage {
    /// What gave a grant, in words: `policy support-tickets`, `exception x_…`.
    public static func origin(ofPolicy policy: String) -> String {
        AccessException.id(fromPolicy: policy).map { "exception \($0)" } ?? "policy \(policy)"
    }
}

/// A grant together with the lineage that justifies it.
public struct JustifiedGrant: Sendable, Hashable, Codable {
    public var grant: Grant
    public var lineage: Lineage

    public init(grant: Grant, lineage: Lineage) {
        self.grant = grant
        self.lineage = lineage
    }
}

/// A grant id as its 128 bits: the first 16 bytes of the SHA-256 the id is made of.
/// Compact and cheap to hash, for sets of every grant in the store.
public struct GrantKey: Sendable, Hashable, Comparable {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(high)
        hasher.combine(low)
    }

    /// The position sets and dictionaries give the key. Its bits are already a SHA-256's, so
    /// a full SipHash round (what `Hasher` does) adds nothing but time, and a full
    /// reconciliation looks up every key of the store: they are mixed with the table's
    /// per-process seed by a 64-bit finaliser instead (MurmurHash3's `fmix64`). Crafting
    /// keys that share a position would take inputs whose SHA-256 agree on 64 bits.
    public func _rawHashValue(seed: Int) -> Int {
        var mixed = (high ^ low) &+ UInt64(truncatingIfNeeded: seed)
        mixed ^= mixed >> 33
        mixed &*= 0xff51_afd7_ed55_8ccd
        mixed ^= mixed >> 33
        mixed &*= 0xc4ce_b9fe_1a85_ec53
        mixed ^= mixed >> 33
        return Int(truncatingIfNeeded: mixed)
    }

    /// The key a `g_` + 32 hex digits id spells; nil for any other text.
    public init?(id: String) {
        let utf8 = id.utf8
        guard utf8.count == 34, utf8.prefix(2).elementsEqual("g_".utf8) else { return nil }
        let digits = utf8.dropFirst(2)
        guard let high = try? Hex.number(digits.prefix(16), lowercaseOnly: true),
            let low = try? Hex.number(digits.dropFirst(16), lowercaseOnly: true)
        else { return nil }
        self.init(high: high, low: low)
    }

    /// `g_` + 32 lower-case hex digits.
    public var id: String { Hex.encode(prefix: "g_", high: high, low: low) }

    public static func < (lhs: GrantKey, rhs: GrantKey) -> Bool {
        (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }
}
