import Foundation
import TetherCore

/// A deleted object as Active Directory keeps it for a while: in the Deleted Objects
/// container, with `isDeleted: TRUE`, its `objectGUID` and a fresh `uSNChanged`.
struct Tombstone: Sendable, Hashable {
    /// The object's GUID as its UUID string (as ``EntryMapper`` renders `objectGUID`).
    var guid: String
    /// When it was deleted (`whenChanged`), in Tether's version form; "" when unreadable.
    var version: String
}

/// The OID that marks an Active Directory (or Samba AD) server in the root DSE's
/// `supportedCapabilities` (LDAP_CAP_ACTIVE_DIRECTORY_OID).
let activeDirectoryCapabilityOID = "1.2.840.113556.1.4.800"

extension LDAPEntry {
    /// Whether the root DSE is an Active Directory domain controller's: it names AD's
    /// capability, or counts update sequence numbers.
    var isActiveDirectory: Bool {
        self["supportedCapabilities"].contains(activeDirectoryCapabilityOID) || first("highestCommittedUSN") != nil
    }
}

extension DirectorySession {
    /// The Deleted Objects container of the naming context that holds `users.base` (the
    /// longest of the root DSE's `namingContexts` that ends it), or nil when none does.
    func deletedObjectsContainer(_ dse: LDAPEntry) -> String? {
        let base = DistinguishedName.normalize(configuration.users.base)
        let context = dse["namingContexts"]
            .filter { context in
                let normalized = DistinguishedName.normalize(context)
                return base == normalized || base.hasSuffix("," + normalized)
            }
            .max { $0.count < $1.count }
        return context.map { "CN=Deleted Objects,\($0)" }
    }

    /// Reads the tombstones in `container` whose `uSNChanged` is at least `from`, with the
    /// Show Deleted control; every page must succeed.
    ///
    /// - Returns: nil when the server will not show them (the bind account may not list
    ///   the container, or the control is refused): deletions then wait for the next
    ///   complete read, as they did before, and the operator is told once.
    func readTombstones(_ connection: LDAPConnection, in container: String, from usn: String) async throws -> [Tombstone]? {
        var request = LDAPSearchRequest(
            base: container, scope: .one,
            filter: LDAPFilter.and(["(isDeleted=TRUE)", LDAPFilter.greaterOrEqual("uSNChanged", usn)]),
            attributes: ["objectGUID", "whenChanged", "uSNChanged"], binaryAttributes: ["objectguid"])
        request.showDeleted = true
        let entries: [LDAPEntry]
        do {
            entries = try await readAll(connection, request, search: "tombstones")
        } catch let error as LDAPError where error.code == .search {
            // The server answered and refused (no such object, insufficient access, an
            // unavailable critical extension): not a broken connection.
            logger.warning(
                "Active Directory tombstones cannot be read, so deletions reach Tether only with the next complete read (fullScanInterval); give the bind account the right to list the Deleted Objects container",
                metadata: ["ldap.container": "\(container)", "ldap.error": "\(error)"])
            return nil
        }
        return entries.compactMap { entry in
            guard let bytes = entry.binary["objectguid"]?.first, bytes.count == 16 else { return nil }
            return Tombstone(
                guid: UUIDText.format(bytes, littleEndianFields: true),
                version: entry.first("whenChanged").flatMap(DirectoryVersion.fromGeneralizedTime) ?? "")
        }
    }

    /// Applies each tombstone of a person Tether follows as a deletion of that person
    /// (a leaver, through the engine's safety gates like any deletion); tombstones of other
    /// objects (groups, computers, people outside `users`) are passed over.
    func applyTombstones(_ tombstones: [Tombstone]) async throws {
        for tombstone in tombstones {
            guard let key = mirror.model.userKey(externalId: tombstone.guid) else { continue }
            let trigger = max(tombstone.version, Timestamp.version(service.wallClock.now()))
            try await applyDeletion(key: key, cookie: nil, trigger: trigger)
        }
    }
}
