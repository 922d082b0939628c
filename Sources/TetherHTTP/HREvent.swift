import Foundation
import Hummingbird
import TetherCore

/// One HR lifecycle event as the webhook (and `tether ingest`) receives it (SPEC §8): an id,
/// a type, when it happened and took effect, and the person as a SCIM user with the
/// enterprise extension.
public struct HREvent: Sendable, Hashable {
    /// The lifecycle event the body describes, with source `hr`.
    public var event: LifecycleEvent

    /// Parses and validates a body. A fault is an ``APIError`` with code `malformed` whose
    /// `path` says where (`$.user.externalId`) and whose detail says what is wrong.
    ///
    /// - Parameters:
    ///   - now: the time the event is received; a joiner or mover may not take effect later.
    ///   - tolerance: how far past `now` `occurredAt` may be (`sources.hr.tolerance`): a later
    ///     one is refused, as it would make every later event for the person stale.
    public init(json: some DataProtocol, now: Date, tolerance: Duration = .seconds(300)) throws(APIError) {
        let body: Body
        do {
            body = try JSONDecoder().decode(Body.self, from: Data(json))
        } catch let error as DecodingError {
            throw JSONBody.describe(error)
        } catch {
            throw APIError(.malformed, "the body is not valid JSON", path: "$", underlying: error)
        }
        event = try body.lifecycleEvent(now: now, tolerance: tolerance)
    }

    // MARK: The wire shape

    struct Body: Decodable {
        var id: String
        var type: String
        var occurredAt: String
        var effectiveAt: String?
        var user: User
    }

    struct User: Decodable {
        var externalId: String?
        var userName: String?
        var displayName: String?
        var name: Name?
        var title: String?
        var active: Bool?
        var emails: [Email]?
        var enterprise: Enterprise?

        enum CodingKeys: String, CodingKey {
            case externalId, userName, displayName, name, title, active, emails
            case enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        }
    }

    struct Name: Decodable {
        var formatted: String?
    }

    struct Email: Decodable {
        var value: String
        var primary: Bool?
    }

    struct Enterprise: Decodable {
        var employeeNumber: String?
        var costCenter: String?
        var organization: String?
        var division: String?
        var department: String?
        var manager: Manager?
    }

    struct Manager: Decodable {
        var value: String?
    }
}

extension HREvent.Body {
    /// Maps the body to a lifecycle event, refusing what cannot be a true statement about a person.
    func lifecycleEvent(now: Date, tolerance: Duration) throws(APIError) -> LifecycleEvent {
        guard !id.trimmingCharacters(in: .whitespaces).isEmpty else { throw APIError(.malformed, "must not be empty", path: "$.id") }
        guard id.count <= 256 else { throw APIError(.malformed, "must be at most 256 characters", path: "$.id") }
        guard let kind = EventKind(rawValue: type) else {
            throw APIError(.malformed, "must be joiner, mover or leaver, not \(quoted(type))", path: "$.type")
        }
        guard let occurred = Timestamp.parse(occurredAt) else {
            throw APIError(.malformed, "\(quoted(occurredAt)) is not an RFC 3339 date-time", path: "$.occurredAt")
        }
        let (seconds, attoseconds) = tolerance.components
        let slack = Double(seconds) + Double(attoseconds) / 1e18
        if occurred > now + slack {
            throw APIError(
                .malformed,
                "\(quoted(occurredAt)) is later than now (\(Timestamp.string(now))) plus the tolerance "
                    + "\(DurationText.string(slack)): a time "
                    + "from the future would make every later event for this person stale; send the time the change happened",
                path: "$.occurredAt")
        }
        var effective: Date?
        if let effectiveAt {
            guard let date = Timestamp.parse(effectiveAt) else {
                throw APIError(.malformed, "\(quoted(effectiveAt)) is not an RFC 3339 date-time", path: "$.effectiveAt")
            }
            // Only leavers are scheduled; a future joiner or mover applied now would grant early.
            if kind != .leaver, date > now {
                throw APIError(
                    .malformed, "only a leaver can take effect later; send the \(type) when it takes effect",
                    path: "$.effectiveAt")
            }
            effective = date
        }
        guard let externalId = user.externalId?.trimmingCharacters(in: .whitespaces), !externalId.isEmpty else {
            throw APIError(.malformed, "is required: it is the person's key in the HR system", path: "$.user.externalId")
        }
        let status: IdentityStatus?
        switch kind {
        case .leaver:
            if user.active == true { throw APIError(.malformed, "a leaver cannot be active", path: "$.user.active") }
            status = .terminated
        case .joiner:
            if user.active == false {
                throw APIError(.malformed, "a joiner cannot be inactive; send a leaver", path: "$.user.active")
            }
            status = .active
        case .mover:
            status = nil  // a mover changes facts, not status
        }
        var email: String?
        if let emails = user.emails {
            for (index, entry) in emails.enumerated() where entry.value.isEmpty {
                throw APIError(.malformed, "must not be empty", path: "$.user.emails[\(index)].value")
            }
            email = (emails.first { $0.primary == true } ?? emails.first)?.value
        }
        let enterprise = user.enterprise
        var attributes: [String: [String]] = [:]
        for (key, value) in [
            ("costCenter", enterprise?.costCenter), ("organization", enterprise?.organization), ("division", enterprise?.division),
        ] {
            if let value, !value.isEmpty { attributes[key] = [value] }
        }
        let facts = IdentityFacts(
            externalId: externalId, userName: nonEmpty(user.userName), email: nonEmpty(email),
            displayName: nonEmpty(user.displayName) ?? nonEmpty(user.name?.formatted), employeeNumber: nonEmpty(enterprise?.employeeNumber),
            department: nonEmpty(enterprise?.department), title: nonEmpty(user.title), manager: nonEmpty(enterprise?.manager?.value),
            status: status, attributes: attributes, version: Timestamp.version(occurred))
        return LifecycleEvent(id: id, source: .hr, kind: kind, occurredAt: occurred, effectiveAt: effective, facts: facts)
    }

    private func nonEmpty(_ value: String?) -> String? {
        guard let value, !value.isEmpty else { return nil }
        return value
    }

    private func quoted(_ value: String) -> String {
        var text = ""
        JSONValue.appendString(String(value.prefix(64)), to: &text)
        return text
    }
}
