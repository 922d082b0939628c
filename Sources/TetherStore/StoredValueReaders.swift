import TetherCore

/// Readers of the small JSON values every decision reads (a grant's lineage, an agent's
/// state) straight from their stored text, without `JSONDecoder`: on a leaver's path,
/// decoding them through it was a tenth of the CPU.
///
/// Anything they do not expect (malformed text, a value of another type, a missing field)
/// gives nil, and the caller falls back on the decoder, which reads or rejects the text as
/// it always did.
extension Lineage {
    static func read(_ text: String) -> Lineage? { JSONReader.whole(text) { $0.lineage() } }
}

extension AgentState {
    static func read(_ text: String) -> AgentState? { JSONReader.whole(text) { $0.agentState() } }
}

extension JSONReader {
    /// What `value` reads from the whole of `text`; nil when it reads nothing or text is left.
    static func whole<Value>(_ text: String, _ value: (inout JSONReader) -> Value?) -> Value? {
        var text = text
        return text.withUTF8 { bytes in
            var reader = JSONReader(bytes)
            guard let read = value(&reader), reader.atEnd else { return nil }
            return read
        }
    }

    mutating func lineage() -> Lineage? {
        var policy: String?
        var policySet: String?
        var identity: String??
        var facts: [String]?
        var versions: [String: String]?
        var events: [String: String]?
        let complete = object { reader, key in
            switch key {
            case "policy":
                policy = reader.string()
                return policy != nil
            case "policySet":
                policySet = reader.string()
                return policySet != nil
            case "identity":
                identity = reader.optionalString()
                return identity != nil
            case "facts":
                facts = reader.strings()
                return facts != nil
            case "versions":
                versions = reader.stringMap()
                return versions != nil
            case "events":
                events = reader.stringMap()
                return events != nil
            default:
                return reader.skipValue()
            }
        }
        guard complete, let policy, let policySet, let facts, let versions, let events else { return nil }
        return Lineage(
            policy: policy, policySet: policySet, identity: identity ?? nil, facts: facts, versions: versions,
            events: events)
    }

    mutating func agentState() -> AgentState? {
        var agent: String?
        var optional: [String: String?] = [:]
        var quarantined: Bool?
        var awaitsOperator: Bool?
        let complete = object { reader, key in
            switch key {
            case "agent":
                agent = reader.string()
                return agent != nil
            case "sponsorOverride", "reason", "proposedSponsor":
                guard let value = reader.optionalString() else { return false }
                optional[key] = value
                return true
            case "quarantined":
                quarantined = reader.bool()
                return quarantined != nil
            case "awaitsOperator":
                awaitsOperator = reader.bool()
                return awaitsOperator != nil
            default:
                return reader.skipValue()
            }
        }
        guard complete, let agent, let quarantined, let awaitsOperator else { return nil }
        return AgentState(
            agent: agent, sponsorOverride: optional["sponsorOverride"] ?? nil, quarantined: quarantined,
            reason: optional["reason"] ?? nil, proposedSponsor: optional["proposedSponsor"] ?? nil,
            awaitsOperator: awaitsOperator)
    }

    /// An object of strings by name.
    mutating func stringMap() -> [String: String]? {
        var values: [String: String] = [:]
        let read = object { reader, name in
            guard let value = reader.string() else { return false }
            values[name] = value
            return true
        }
        return read ? values : nil
    }
}
