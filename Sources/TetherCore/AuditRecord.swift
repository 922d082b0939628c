import Foundation

/// Every kind of change the audit log records (SPEC §9).
public enum AuditAction: String, Sendable, Hashable, Codable, CaseIterable {
    case identityJoined = "identity.joined"
    case identityMoved = "identity.moved"
    case identitySuspended = "identity.suspended"
    case identityTerminated = "identity.terminated"
    case identityReactivated = "identity.reactivated"
    case grantGranted = "grant.granted"
    case grantRevoked = "grant.revoked"
    /// A grant given by an exception revoked because the exception reached its end.
    case grantExpired = "grant.expired"
    /// A grant found on a target that no grant in the store explains, reported and left there.
    case grantOrphaned = "grant.orphaned"
    case agentQuarantined = "agent.quarantined"
    case agentSponsored = "agent.sponsored"
    /// An agent registered at runtime, by SCIM or an operator (SPEC §15).
    case agentRegistered = "agent.registered"
    /// A registered agent's fields or sponsors changed (re-enabling one included).
    case agentUpdated = "agent.updated"
    /// A registered agent set inactive: its grants revoked in the same commit.
    case agentDisabled = "agent.disabled"
    /// A registered agent deleted: its grants revoked in the same commit.
    case agentDeleted = "agent.deleted"
    case planHeld = "plan.held"
    case planApproved = "plan.approved"
    case planRejected = "plan.rejected"
    case configReloaded = "config.reloaded"
    case configRejected = "config.rejected"
    case eventRejected = "event.rejected"
    case eventStale = "event.stale"
    case sourceDegraded = "source.degraded"
    case sourceRecovered = "source.recovered"
    case resyncRequested = "resync.requested"
    case exceptionAdded = "exception.added"
    case exceptionRemoved = "exception.removed"
    case exceptionExpired = "exception.expired"
    /// A source's revocations went past its window's budget (SPEC §6 `safety.window`).
    case safetyWindowExceeded = "safety.window_exceeded"
    /// Check decisions the decision log dropped in an interval, its queue full (SPEC §16).
    case decisionsDropped = "decisions.dropped"
    /// An access review campaign started (SPEC §18).
    case reviewStarted = "review.started"
    /// A reviewer kept or revoked an item, through the review page.
    case reviewDecided = "review.decided"
    /// An item closed by itself: its grants were gone before anyone had to decide.
    case reviewItemClosed = "review.item_closed"
    /// A campaign closed: decisions and defaults applied.
    case reviewClosed = "review.closed"
}

/// Who made a change: a source, the scheduler, policy, or an operator by unix user name.
public struct Actor: Sendable, Hashable, Codable, CustomStringConvertible {
    public let description: String

    public init(_ text: String) { description = text }

    public static let ldap = Actor("ldap")
    public static let scim = Actor("scim")
    public static let hr = Actor("hr")
    public static let scheduler = Actor("scheduler")
    public static let policy = Actor("policy")
    public static func `operator`(_ user: String) -> Actor { Actor("operator:\(user)") }
    public static func source(_ source: Source) -> Actor {
        source == .operator ? .operator("unknown") : Actor(source.rawValue)
    }
}

/// An audit record before it joins the chain: what happened, who did it, when, and the
/// subject matter (`grant`, `subject`, `agent`, `plan`, `reason`, …).
public struct AuditEntry: Sendable, Hashable {
    public var action: AuditAction
    public var actor: Actor
    public var time: Date
    public var fields: [String: String]

    public init(action: AuditAction, actor: Actor, time: Date, fields: [String: String] = [:]) {
        self.action = action
        self.actor = actor
        self.time = time
        self.fields = fields
    }

    /// Seals the entry as record `seq` after the record whose hash is `prev`.
    public func sealed(seq: Int, prev: String) -> AuditRecord {
        var values = fields.mapValues(AuditValue.string)
        values["action"] = .string(action.rawValue)
        values["actor"] = .string(actor.description)
        values["time"] = .string(Timestamp.string(time))
        values["seq"] = .int(seq)
        values["prev"] = .string(prev)
        let body = CanonicalJSON.object(values)
        return AuditRecord(values: values, hash: AuditRecord.hash(prev: prev, body: body))
    }
}

extension AuditEntry {
    /// What ``sealed(seq:prev:)`` gives, as the store writes it: the record's hash and its
    /// §9 line, each key encoded once (a cold start seals a million records).
    public func sealedLine(seq: Int, prev: String) -> (hash: String, line: String) {
        sealedLine(seq: seq, prev: prev, time: Timestamp.string(time))
    }

    /// ``sealedLine(seq:prev:)`` with the entry's `time` already written as ``Timestamp/string(_:)``
    /// writes it: the records of one commit share their time.
    public func sealedLine(seq: Int, prev: String, time timeText: String) -> (hash: String, line: String) {
        // A field named `hash` is replaced in the line, not in the body: the general path.
        guard fields["hash"] == nil else { return sealedLineSplicing(seq: seq, prev: prev, time: timeText) }
        var keys: [String] = []
        keys.reserveCapacity(fields.count + 5)
        for key in fields.keys where !Self.reserved.contains(key) { keys.append(key) }
        keys += Self.reservedKeys
        keys.sort { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        // The body is the record without `hash`; the line is the same text with the hash pair
        // inserted before the first key that sorts after "hash" ("prev", "seq" and "time" do).
        var body = "{"
        body.reserveCapacity(512)
        var split: String.Index?
        for (index, key) in keys.enumerated() {
            if index > 0 { body += "," }
            if split == nil, !key.utf8.lexicographicallyPrecedes("hash".utf8) { split = body.endIndex }
            CanonicalJSON.appendString(key, to: &body)
            body += ":"
            switch key {
            case "action": CanonicalJSON.appendString(action.rawValue, to: &body)
            case "actor": CanonicalJSON.appendString(actor.description, to: &body)
            case "time": CanonicalJSON.appendString(timeText, to: &body)
            case "seq": body += String(seq)
            case "prev": CanonicalJSON.appendString(prev, to: &body)
            default: CanonicalJSON.appendString(fields[key]!, to: &body)
            }
        }
        body += "}"
        let hash = Hex.sha256(parts: prev, "\n", body)
        let at = split!
        var line = String(body[..<at])
        line.reserveCapacity(body.utf8.count + 80)
        line += "\"hash\":\""
        line += hash
        line += "\","
        line += body[at...]
        return (hash, line)
    }

    private static let reserved: Set<String> = ["action", "actor", "time", "seq", "prev"]
    private static let reservedKeys = ["action", "actor", "time", "seq", "prev"]

    /// The general form: each key encoded into its own pair, the line rebuilt from the pairs.
    private func sealedLineSplicing(seq: Int, prev: String, time timeText: String) -> (hash: String, line: String) {
        var pairs: [(key: String, json: String)] = []
        pairs.reserveCapacity(fields.count + 6)
        func add(_ key: String, _ value: AuditValue) {
            var json = ""
            CanonicalJSON.appendString(key, to: &json)
            json += ":"
            switch value {
            case .string(let text): CanonicalJSON.appendString(text, to: &json)
            case .int(let number): json += String(number)
            }
            pairs.append((key, json))
        }
        for (key, value) in fields where !Self.reserved.contains(key) { add(key, .string(value)) }
        add("action", .string(action.rawValue))
        add("actor", .string(actor.description))
        add("time", .string(timeText))
        add("seq", .int(seq))
        add("prev", .string(prev))
        pairs.sort { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
        let body = "{" + pairs.map(\.json).joined(separator: ",") + "}"
        let hash = AuditRecord.hash(prev: prev, body: body)
        var hashPair = ""
        CanonicalJSON.appendString("hash", to: &hashPair)
        hashPair += ":"
        CanonicalJSON.appendString(hash, to: &hashPair)
        // The line's `hash` replaces a field of that name, as ``AuditRecord/line`` does.
        let others = pairs.filter { $0.key != "hash" }
        let position = others.firstIndex { !$0.key.utf8.lexicographicallyPrecedes("hash".utf8) } ?? others.endIndex
        var withHash = others.map(\.json)
        withHash.insert(hashPair, at: position)
        return (hash, "{" + withHash.joined(separator: ",") + "}")
    }
}

/// A sealed audit record: one link of the hash chain.
public struct AuditRecord: Sendable, Hashable {
    /// Every key of the record except `hash`.
    public let values: [String: AuditValue]
    /// Hex SHA-256 of `prev + "\n" + body`.
    public let hash: String

    /// The `prev` of the first record.
    public static let genesis = String(repeating: "0", count: 64)

    public init(values: [String: AuditValue], hash: String) {
        self.values = values
        self.hash = hash
    }

    public var seq: Int {
        if case .int(let seq) = values["seq"] { return seq }
        return 0
    }
    public var prev: String { values["prev"]?.string ?? "" }
    public var action: String { values["action"]?.string ?? "" }
    public subscript(_ key: String) -> String? { values[key]?.string }

    /// The canonical JSON of the record without `hash`: the bytes the hash covers.
    public var body: String { CanonicalJSON.object(values) }

    /// The §9 JSON Lines form: the canonical JSON of the record with its hash.
    public var line: String {
        var all = values
        all["hash"] = .string(hash)
        return CanonicalJSON.object(all)
    }

    static func hash(prev: String, body: String) -> String {
        Hex.sha256(parts: prev, "\n", body)
    }
}
