import Foundation
import TetherCore

/// How both backends write values into their text columns and read them back: JSON with
/// sorted keys and times in milliseconds, `Timestamp` strings for times. The stored texts are
/// the same in SQLite and PostgreSQL, so rows move between the two unchanged.
protocol StoredTextCoding {}

extension SQLiteStateStore: StoredTextCoding {}
extension PostgresStateStore: StoredTextCoding {}

/// Shared by every encode: a JSONEncoder is safe to use from several threads at once.
private let storedTextEncoder: JSONEncoder = {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    encoder.dateEncodingStrategy = .millisecondsSince1970
    return encoder
}()

extension StoredTextCoding {
    static var encoder: JSONEncoder { storedTextEncoder }

    static func encode<T: Encodable>(_ value: T) throws -> String {
        String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    static func decoder() -> JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .millisecondsSince1970
        return decoder
    }

    static func decode<T: Decodable>(_ type: T.Type, _ text: String, what: @autoclosure () -> String, with decoder: JSONDecoder = decoder()) throws -> T {
        do {
            return try decoder.decode(type, from: Data(text.utf8))
        } catch {
            throw StoreError(.corrupt, "stored \(what()) cannot be decoded", underlying: error)
        }
    }

    /// A stored identity, read without the decoder when it can be (``IdentityJSON/read(_:)``).
    /// - Parameter sharing: for reads of many identities: the values they repeat are kept once.
    static func identity(_ text: String, what: @autoclosure () -> String, sharing: IdentityValues? = nil) throws -> Identity {
        try IdentityJSON.read(text, sharing: sharing) ?? decode(Identity.self, text, what: what())
    }

    static func time(_ date: Date) -> String { Timestamp.string(date) }

    /// A lineage's stored text: the JSON the store's encoder writes for it (keys sorted,
    /// `identity` left out when nil), built directly, because a cold start writes a million.
    static func lineageJSON(_ lineage: Lineage) -> String {
        var out = "{\"events\":"
        appendObject(lineage.events, to: &out)
        out += ",\"facts\":["
        for (index, fact) in lineage.facts.enumerated() {
            if index > 0 { out += "," }
            CanonicalJSON.appendString(fact, to: &out)
        }
        out += "]"
        if let identity = lineage.identity {
            out += ",\"identity\":"
            CanonicalJSON.appendString(identity, to: &out)
        }
        out += ",\"policy\":"
        CanonicalJSON.appendString(lineage.policy, to: &out)
        out += ",\"policySet\":"
        CanonicalJSON.appendString(lineage.policySet, to: &out)
        out += ",\"versions\":"
        appendObject(lineage.versions, to: &out)
        return out + "}"
    }

    static func appendObject(_ object: [String: String], to out: inout String) {
        out += "{"
        for (index, key) in object.keys.sorted(by: { $0.utf8.lexicographicallyPrecedes($1.utf8) }).enumerated() {
            if index > 0 { out += "," }
            CanonicalJSON.appendString(key, to: &out)
            out += ":"
            CanonicalJSON.appendString(object[key]!, to: &out)
        }
        out += "}"
    }

    static func parseRecord(_ line: String) throws -> AuditRecord {
        var values = try decode([String: AuditValue].self, line, what: "audit record")
        let hash = values.removeValue(forKey: "hash")?.string ?? ""
        return AuditRecord(values: values, hash: hash)
    }
}

extension StoredTextCoding {
    /// The held plans of `ids` that `supersession` rejects, with who rejects them and the
    /// `plan.rejected` record of each: what both backends write when a later computation for
    /// the same scope supersedes them.
    static func supersededPlans(
        _ ids: [String], by supersession: Supersession, in changeset: Changeset
    ) -> [(id: String, resolvedBy: String, audit: AuditEntry)] {
        let scope = supersession.scope.description
        let reason = supersession.keeping.map { "superseded by plan \($0), held for the same scope" }
            ?? "superseded: a later computation for the same scope no longer gives this plan"
        return ids.filter { $0 != changeset.planResolution?.id }.map { id in
            (
                id, "\(supersession.actor) (superseded)",
                AuditEntry(
                    action: .planRejected, actor: supersession.actor, time: changeset.time,
                    fields: ["plan": id, "scope": scope, "reason": reason])
            )
        }
    }

    /// Whether a drift repair decided on an earlier read still holds, from what the
    /// transaction sees now: its grant `changed` (an audit record since the check), `waiting`
    /// in the target's outbox, `stored`, and whether the same orphan was `reported` already.
    static func repairHolds(
        _ kind: TargetRepair.Kind, changed: Bool, waiting: Bool, stored: Bool, reported: () throws -> Bool
    ) rethrows -> Bool {
        if changed || waiting { return false }
        switch kind {
        case .resend: return stored
        case .revokeOrphan: return !stored
        case .reportOrphan: return try !stored && !reported()
        }
    }
}
