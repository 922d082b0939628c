import Foundation
import TetherCore

/// Reads the generated directory.ldif into the facts the LDAP source would map from the
/// same entries (SPEC §4 default mapping, costCenter ← businessCategory, employeeType),
/// so the engine can be loaded without a running slapd.
enum Directory {
    /// The version the LDAP source derives from the entryCSN every generated person carries.
    static let version = "2026-01-05T09:00:00.000000Z#000000#000#000000"

    static func read(ldif path: String) throws -> [IdentityFacts] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        var people: [(dn: String, attributes: [String: [String]])] = []
        var groups: [String: Set<String>] = [:]  // member DN → group names (cn and DN)
        var dn = ""
        var attributes: [String: [String]] = [:]
        func flush() {
            defer {
                dn = ""
                attributes = [:]
            }
            guard !dn.isEmpty, let classes = attributes["objectClass"] else { return }
            if classes.contains("inetOrgPerson") {
                people.append((dn, attributes))
            } else if classes.contains("groupOfNames"), let cn = attributes["cn"]?.first {
                for member in attributes["member"] ?? [] {
                    groups[member, default: []].formUnion([cn, dn])
                }
            }
        }
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.isEmpty {
                flush()
                continue
            }
            guard let colon = line.firstIndex(of: ":") else { continue }
            let name = String(line[..<colon])
            let value = String(line[line.index(after: colon)...].drop { $0 == " " })
            if name == "dn" { dn = value } else { attributes[name, default: []].append(value) }
        }
        flush()
        var uuids: [String: String] = [:]
        for person in people { uuids[person.dn] = person.attributes["entryUUID"]?.first }
        return people.map { person in
            let a = person.attributes
            var extra: [String: [String]] = [:]
            if let value = a["businessCategory"] { extra["costCenter"] = value }
            if let value = a["employeeType"] { extra["employeeType"] = value }
            return IdentityFacts(
                externalId: a["entryUUID"]?.first, userName: a["uid"]?.first, email: a["mail"]?.first,
                displayName: a["cn"]?.first, employeeNumber: a["employeeNumber"]?.first,
                department: a["departmentNumber"]?.first, title: a["title"]?.first,
                manager: a["manager"]?.first.flatMap { uuids[$0] }, status: .active,
                groups: groups[person.dn] ?? [], attributes: extra, version: version)
        }
    }
}
