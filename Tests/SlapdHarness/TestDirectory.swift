/// A directory server a test changes with LDIF as its administrator: slapd, 389-DS or Samba AD.
public protocol TestDirectory: Sendable {
    var url: String { get }
    /// The DN and password of the account that may change everything.
    var administratorDN: String { get }
    var administratorPassword: String { get }
}

extension TestDirectory {
    /// Applies LDIF changes with `ldapmodify`.
    public func modify(_ ldif: String) throws {
        try Slapd.run("/usr/bin/ldapmodify", ["-x", "-H", url, "-D", administratorDN, "-w", administratorPassword], input: ldif)
    }

    /// Adds the entries of `ldif` with `ldapmodify -a`.
    public func add(_ ldif: String) throws {
        try Slapd.run(
            "/usr/bin/ldapmodify", ["-a", "-x", "-H", url, "-D", administratorDN, "-w", administratorPassword], input: ldif)
    }
}

extension Slapd: TestDirectory {
    public var administratorDN: String { Self.rootDN }
    public var administratorPassword: String { Self.rootPassword }
}

extension DirectoryServer389: TestDirectory {
    public var administratorDN: String { Self.rootDN }
    public var administratorPassword: String { Self.rootPassword }
}

extension SambaActiveDirectory: TestDirectory {
    public var administratorDN: String { bindDN }
    public var administratorPassword: String { password }
}
