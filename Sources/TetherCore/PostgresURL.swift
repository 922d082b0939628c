import Foundation

/// Where a PostgreSQL database is: `postgres://USER@HOST[:PORT]/DATABASE` (SPEC §14).
///
/// A password in the URL is refused: it would sit in the configuration file and in every
/// message that quotes the URL. It comes from a file (`store.postgres.passwordFile`).
public struct PostgresURL: Sendable, Hashable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String
    public var database: String

    public init(host: String, port: Int = 5432, user: String, database: String) {
        self.host = host
        self.port = port
        self.user = user
        self.database = database
    }

    /// Reads `text`; throws a ``PostgresURLError`` that says what is wrong with it, quoting it
    /// without whatever stood where a password would.
    public init(_ text: String) throws(PostgresURLError) {
        let shown = Self.redacted(text)
        guard let components = URLComponents(string: text), let scheme = components.scheme,
            ["postgres", "postgresql"].contains(scheme.lowercased())
        else {
            throw PostgresURLError("\(shown) is not a postgres:// URL; expected postgres://USER@HOST:PORT/DATABASE")
        }
        guard components.password == nil else {
            throw PostgresURLError("the URL \(shown) holds a password; put the password in a file and name it with passwordFile")
        }
        guard let host = components.host, !host.isEmpty else { throw PostgresURLError("the URL \(shown) names no host") }
        guard let user = components.user, !user.isEmpty else {
            throw PostgresURLError("the URL \(shown) names no user; expected postgres://USER@HOST:PORT/DATABASE")
        }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty, !database.contains("/") else {
            throw PostgresURLError("the URL \(shown) names no database; expected postgres://USER@HOST:PORT/DATABASE")
        }
        guard components.query == nil else {
            throw PostgresURLError("the URL \(shown) has parameters; set tls, caFile and poolSize as settings of their own")
        }
        self.init(host: host, port: components.port ?? 5432, user: user, database: database)
    }

    /// The URL, with no password in it.
    public var description: String {
        let shownHost = host.contains(":") ? "[\(host)]" : host
        return "postgres://\(user)@\(shownHost):\(port)/\(database)"
    }

    /// `url` with whatever stands between `://` and `@` dropped but the user.
    static func redacted(_ url: String) -> String {
        guard let scheme = url.range(of: "://"), let at = url.range(of: "@", range: scheme.upperBound..<url.endIndex) else { return url }
        let credentials = url[scheme.upperBound..<at.lowerBound]
        let user = credentials.split(separator: ":", maxSplits: 1).first.map(String.init) ?? ""
        return url[..<scheme.upperBound] + user + url[at.lowerBound...]
    }
}

/// A PostgreSQL URL that cannot be used, and why.
public struct PostgresURLError: Error, CustomStringConvertible, Sendable, Hashable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// How a connection to PostgreSQL is protected (`store.postgres.tls`).
public enum PostgresTLS: String, Sendable, Hashable, CaseIterable {
    /// Plain TCP: a database on the same host or a trusted network only.
    case disable
    /// TLS, the server's certificate not checked: against eavesdropping, not impersonation.
    case require
    /// TLS, the certificate checked against `caFile` (else the system's roots) and the host name.
    case verifyFull = "verify-full"
}
