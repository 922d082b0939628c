import Foundation
import TetherCore

/// How a SCIM User becomes the identity facts of source `scim` (SPEC §3).
public enum SCIMIdentityMapping {
    /// The person's key in source `scim`: the resource's `externalId`, else its SCIM `id`.
    public static func key(of attributes: SCIMJSON.Object, id: String) -> String {
        if let externalId = attributes["externalId"]?.stringValue, !externalId.isEmpty { return externalId }
        return id
    }

    /// The facts a User resource states.
    ///
    /// - Parameters:
    ///   - groups: displayNames of the Groups the User belongs to, transitively.
    ///   - managerKey: the manager's key (see ``key(of:id:)``), resolved from `manager.value`.
    ///   - terminated: the resource was deleted: a leaver.
    public static func facts(
        of attributes: SCIMJSON.Object, id: String, version: String, groups: Set<String>, managerKey: String?,
        terminated: Bool = false
    ) -> IdentityFacts {
        let enterprise = attributes[SCIMSchema.enterpriseUserURN]?.objectValue ?? SCIMJSON.Object()
        func text(_ value: SCIMJSON?) -> String? {
            guard let string = value?.stringValue, !string.isEmpty else { return nil }
            return string
        }
        let emails = attributes["emails"]?.arrayValue ?? []
        let email = text((emails.first { $0["primary"] == .bool(true) } ?? emails.first)?["value"])
        var displayName = text(attributes["displayName"]) ?? text(attributes["name"]?["formatted"])
        if displayName == nil {
            let parts = [attributes["name"]?["givenName"], attributes["name"]?["familyName"]].compactMap(text)
            if !parts.isEmpty { displayName = parts.joined(separator: " ") }
        }
        let status: IdentityStatus =
            terminated ? .terminated : (attributes["active"] == .bool(false) ? .suspended : .active)
        var extra: [String: [String]] = [:]
        for name in ["costCenter", "organization", "division"] {
            if let value = text(enterprise[name]) { extra[name] = [value] }
        }
        if let userType = text(attributes["userType"]) { extra["userType"] = [userType] }
        extra["scimId"] = [id]
        return IdentityFacts(
            externalId: key(of: attributes, id: id), userName: text(attributes["userName"]), email: email,
            displayName: displayName, employeeNumber: text(enterprise["employeeNumber"]),
            department: text(enterprise["department"]), title: text(attributes["title"]), manager: managerKey,
            status: status, groups: groups, attributes: extra, version: version)
    }
}

/// Resource versions: `Timestamp.version` of the request time, strictly increasing per
/// resource even if the clock steps back, so identity versions never go stale.
enum SCIMVersion {
    static func next(after previous: String?, now: Date) -> String {
        var candidate = Timestamp.version(now)
        guard let previous, candidate <= previous else { return candidate }
        var date = Timestamp.parse(previous) ?? now
        repeat {
            date += 0.000_001
            candidate = Timestamp.version(date)
        } while candidate <= previous
        return candidate
    }

    /// The weak ETag of a version: `W/"<version>"`.
    static func etag(_ version: String) -> String { "W/\"\(version)\"" }

    /// Whether an `If-Match` header value lets a write go ahead on a resource at `version`
    /// (weak comparison, `*` matches any existing resource; RFC 7232 §3.1).
    static func matches(ifMatch header: String, version: String) -> Bool {
        let tags = header.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        return tags.contains { tag in
            if tag == "*" { return true }
            var opaque = Substring(tag)
            if opaque.hasPrefix("W/") || opaque.hasPrefix("w/") { opaque = opaque.dropFirst(2) }
            if opaque.hasPrefix("\""), opaque.hasSuffix("\""), opaque.count >= 2 { opaque = opaque.dropFirst().dropLast() }
            return opaque == version
        }
    }
}

/// Serialises SCIM writes in this process: each one reads, decides and commits alone, so
/// concurrent clients never interleave read-check-write (the store's version check is the
/// backstop across processes).
actor SCIMWriteGate {
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func run<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        while busy {
            await withCheckedContinuation { waiters.append($0) }
        }
        busy = true
        defer {
            busy = false
            if !waiters.isEmpty { waiters.removeFirst().resume() }
        }
        return try await body()
    }
}
