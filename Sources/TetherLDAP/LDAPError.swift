import CLDAP

/// An error from the LDAP source: what Tether was doing, and what the server or libldap said.
///
/// Carries the LDAP result code with its name, the matched DN and the server's diagnostic
/// message, so an operator can tell a wrong base DN from a refused bind or a dead server.
public struct LDAPError: Error, CustomStringConvertible, Sendable {
    /// What kind of failure this is, as far as the source's reaction is concerned.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String

        /// The server could not be reached, or the connection broke.
        public static let unreachable = Code(name: "unreachable")
        /// TLS could not be set up: a refused certificate, a missing CA file, a StartTLS refusal.
        public static let tls = Code(name: "tls")
        /// The bind was refused, or the password file could not be read.
        public static let bind = Code(name: "bind")
        /// The server did not answer within `timeout`.
        public static let timeout = Code(name: "timeout")
        /// A search (or one page of it) failed.
        public static let search = Code(name: "search")
        /// The server answered with a referral; Tether does not chase referrals.
        public static let referral = Code(name: "referral")
        /// The server asked for a full reload (RFC 4533 e-syncRefreshRequired).
        public static let syncRefreshRequired = Code(name: "syncRefreshRequired")
        /// The directory is behind Tether's resume point: it refused to resume syncrepl from
        /// the stored cookie, or an Active Directory domain controller's USN went back or its
        /// invocationId changed (restored from a backup, or a crash lost its latest writes).
        public static let staleResumePoint = Code(name: "staleResumePoint")
        /// The server does not offer what the configuration requires (e.g. syncrepl).
        public static let unsupported = Code(name: "unsupported")
        /// The configuration cannot work (a bad URL, an unreadable file).
        public static let configuration = Code(name: "configuration")

        /// The code's name, e.g. `unreachable`.
        public var description: String { name }
    }

    /// The kind of failure.
    public var code: Code
    /// What Tether was doing, in words (e.g. "binding as cn=tether,ou=services,dc=example,dc=com").
    public var message: String
    /// The LDAP result code (RFC 4511) or libldap's negative API code; 0 when there is none.
    public var resultCode: Int32
    /// The matched DN the server returned, if any (useful for a base DN that does not exist).
    public var matchedDN: String?
    /// The server's diagnostic message, if any.
    public var diagnosticMessage: String?
    /// Referral URLs the server answered with, if any.
    public var referrals: [String]
    /// The error that caused this one, if any.
    public var underlying: (any Error & Sendable)?

    /// Creates an error.
    public init(
        _ code: Code, _ message: String, resultCode: Int32 = 0, matchedDN: String? = nil,
        diagnosticMessage: String? = nil, referrals: [String] = [], underlying: (any Error & Sendable)? = nil
    ) {
        self.code = code
        self.message = message
        self.resultCode = resultCode
        self.matchedDN = matchedDN
        self.diagnosticMessage = diagnosticMessage
        self.referrals = referrals
        self.underlying = underlying
    }

    /// libldap's name for the result code, e.g. "Invalid credentials".
    public var resultName: String {
        guard resultCode != 0, let text = ldap_err2string(resultCode) else { return "" }
        return String(cString: text)
    }

    /// What happened, with the result code, diagnostic, matched DN and referrals when known.
    public var description: String {
        var text = message
        if resultCode != 0 { text += ": \(resultName) (\(resultCode))" }
        if let diagnosticMessage, !diagnosticMessage.isEmpty { text += "; diagnostic: \(diagnosticMessage)" }
        if let matchedDN, !matchedDN.isEmpty { text += "; matched DN: \(matchedDN)" }
        if !referrals.isEmpty { text += "; referrals: \(referrals.joined(separator: " "))" }
        if let underlying { text += "; \(underlying)" }
        return text
    }
}

extension LDAPError.Code {
    /// The code that fits a libldap result code met while doing something of kind `fallback`.
    static func forResult(_ resultCode: Int32, fallback: LDAPError.Code) -> LDAPError.Code {
        switch resultCode {
        case LDAP_SERVER_DOWN, LDAP_CONNECT_ERROR, LDAP_UNAVAILABLE, LDAP_BUSY: .unreachable
        case LDAP_TIMEOUT, LDAP_TIMELIMIT_EXCEEDED: .timeout
        case LDAP_REFERRAL, LDAP_REFERRAL_LIMIT_EXCEEDED, LDAP_CLIENT_LOOP: .referral
        case LDAP_INVALID_CREDENTIALS, LDAP_INAPPROPRIATE_AUTH, LDAP_STRONG_AUTH_REQUIRED: .bind
        case LDAP_SYNC_REFRESH_REQUIRED: .syncRefreshRequired
        default: fallback
        }
    }
}
