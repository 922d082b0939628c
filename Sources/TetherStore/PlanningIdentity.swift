import TetherCore

/// A stored identity decoded for planning: every field policy conditions and resource
/// templates read, and the last events, while each source's facts keep only their version,
/// which is all lineage records of them. A full reconciliation decodes every identity, and
/// the facts of each source (groups, attributes, keys) are most of the stored text.
struct PlanningIdentity: Decodable {
    let identity: Identity

    enum Key: String, CodingKey, CaseIterable {
        case id, userName, email, displayName, employeeNumber, department, title, manager, status, statusSource
        case groups, attributes, sources, lastEvents, isTombstone
    }

    private struct Version: Decodable {
        let version: String
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        let versions = try container.decode([Source: Version].self, forKey: .sources)
        identity = Identity(
            id: try container.decode(IdentityID.self, forKey: .id),
            userName: try container.decode(String.self, forKey: .userName),
            email: try container.decodeIfPresent(String.self, forKey: .email),
            displayName: try container.decodeIfPresent(String.self, forKey: .displayName),
            employeeNumber: try container.decodeIfPresent(String.self, forKey: .employeeNumber),
            department: try container.decodeIfPresent(String.self, forKey: .department),
            title: try container.decodeIfPresent(String.self, forKey: .title),
            manager: try container.decodeIfPresent(IdentityID.self, forKey: .manager),
            status: try container.decode(IdentityStatus.self, forKey: .status),
            statusSource: try container.decodeIfPresent(Source.self, forKey: .statusSource),
            groups: try container.decode(Set<String>.self, forKey: .groups),
            attributes: try container.decode([String: [String]].self, forKey: .attributes),
            sources: versions.mapValues { IdentityFacts(status: nil, version: $0.version) },
            lastEvents: try container.decode([Source: String].self, forKey: .lastEvents),
            isTombstone: try container.decode(Bool.self, forKey: .isTombstone))
    }
}
