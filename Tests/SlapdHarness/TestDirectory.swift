/// A directory server a test changes with LDIF, as its root DN: slapd or 389-DS.
public protocol TestDirectory: Sendable {
    /// Applies LDIF changes with `ldapmodify`.
    func modify(_ ldif: String) throws
}

extension Slapd: TestDirectory {}
extension DirectoryServer389: TestDirectory {}
