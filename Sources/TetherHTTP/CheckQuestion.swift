import TetherCore

/// The check question as gateways send it, read on the hot path without `JSONDecoder`.
public enum CheckQuestion {
    /// The question when `bytes` are the plain object gateways send (one string for each of
    /// `subject`, `agent`, `scope` and `resource`, other keys ignored); nil for anything else:
    /// a field given twice, a field of another type, nesting past ``JSONReader/maximumDepth``,
    /// text that is not UTF-8 or not JSON. Every agent action asks this.
    public static func read(_ bytes: UnsafeBufferPointer<UInt8>) -> CheckRequest? {
        var reader = JSONReader(bytes)
        var (subject, agent, scope, resource): (String?, String?, String?, String?)
        func take(_ field: inout String?, _ reader: inout JSONReader) -> Bool {
            // A field given twice is left to the decoder.
            guard field == nil, let value = reader.string() else { return false }
            field = value
            return true
        }
        let complete = reader.object { reader, key in
            switch key {
            case "subject": take(&subject, &reader)
            case "agent": take(&agent, &reader)
            case "scope": take(&scope, &reader)
            case "resource": take(&resource, &reader)
            // A question that waits for a revision is left to the decoder.
            case "atLeast": false
            default: reader.skipValue()
            }
        }
        guard complete, reader.atEnd, let subject, let agent, let scope, let resource else { return nil }
        return CheckRequest(subject: subject, agent: agent, scope: scope, resource: resource)
    }
}
