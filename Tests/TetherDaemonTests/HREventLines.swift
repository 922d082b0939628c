import Foundation

/// SPEC §8 events, as `tether ingest` and the HR webhook take them.
enum HREventLines {
    static func event(
        _ id: String, _ type: String, user: String, employeeNumber: Int, department: String = "Support",
        occurredAt: Date = Date(), effectiveAt: Date? = nil
    ) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var body: [String: Any] = [
            "id": id, "type": type, "occurredAt": formatter.string(from: occurredAt),
            "user": [
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
                "userName": user, "externalId": "E\(employeeNumber)", "active": type != "leaver",
                "emails": [["value": "\(user)@example.com", "primary": true]],
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": ["employeeNumber": "\(employeeNumber)", "department": department],
            ] as [String: Any],
        ]
        if let effectiveAt { body["effectiveAt"] = formatter.string(from: effectiveAt) }
        let data = try! JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    static func joiners(_ users: [(String, Int)], prefix: String = "evt-join") -> String {
        users.map { event("\(prefix)-\($0.0)", "joiner", user: $0.0, employeeNumber: $0.1) }.joined(separator: "\n") + "\n"
    }
}
