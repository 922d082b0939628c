import Foundation
import NIOSSL
import PostgresNIO

/// Where the PostgreSQL backend connects and how (SPEC §14, `store.postgres`).
public struct PostgresSettings: Sendable, Hashable {
    /// How the connection is protected.
    public enum TLSMode: String, Sendable, Hashable, CaseIterable {
        /// Plain TCP: a database on the same host or a trusted network only.
        case disable
        /// TLS, without checking the server's certificate.
        case require
        /// TLS, the certificate checked against `caFile` (or the system's roots) and the host name.
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var user: String
    public var database: String
    /// Read from `store.postgres.passwordFile`, never from the URL.
    public var password: String?
    public var tls: TLSMode
    public var caFile: String?
    /// Connections the daemon keeps open at most.
    public var poolSize: Int

    public init(
        host: String, port: Int = 5432, user: String, database: String, password: String? = nil, tls: TLSMode = .disable,
        caFile: String? = nil, poolSize: Int = 8
    ) {
        self.host = host
        self.port = port
        self.user = user
        self.database = database
        self.password = password
        self.tls = tls
        self.caFile = caFile
        self.poolSize = poolSize
    }

    /// Reads `postgres://USER@HOST[:PORT]/DATABASE`. A password in the URL is refused: it would
    /// be in the configuration file and in every error that quotes it.
    public init(url: String, password: String? = nil, tls: TLSMode = .disable, caFile: String? = nil, poolSize: Int = 8) throws {
        guard let components = URLComponents(string: url), let scheme = components.scheme,
            ["postgres", "postgresql"].contains(scheme.lowercased())
        else {
            throw PostgresSettingsError("\(Self.redacted(url)) is not a postgres:// URL (postgres://USER@HOST:PORT/DATABASE)")
        }
        guard components.password == nil else {
            throw PostgresSettingsError("the URL holds a password: put it in a file named by passwordFile instead")
        }
        guard let host = components.host, !host.isEmpty else {
            throw PostgresSettingsError("\(Self.redacted(url)) names no host")
        }
        guard let user = components.user, !user.isEmpty else {
            throw PostgresSettingsError("\(Self.redacted(url)) names no user (postgres://USER@HOST/DATABASE)")
        }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty, !database.contains("/") else {
            throw PostgresSettingsError("\(Self.redacted(url)) names no database (postgres://USER@HOST/DATABASE)")
        }
        guard poolSize >= 2 else { throw PostgresSettingsError("poolSize must be at least 2, not \(poolSize)") }
        self.init(
            host: host, port: components.port ?? 5432, user: user, database: database, password: password, tls: tls,
            caFile: caFile, poolSize: poolSize)
    }

    /// The URL without a password, as logs and errors may show it.
    public var url: String { "postgres://\(user)@\(host):\(port)/\(database)" }

    /// `url` with whatever stands between `://` and `@` dropped but the user.
    static func redacted(_ url: String) -> String {
        guard let scheme = url.range(of: "://"), let at = url.range(of: "@", range: scheme.upperBound..<url.endIndex) else { return url }
        let credentials = url[scheme.upperBound..<at.lowerBound]
        let user = credentials.split(separator: ":", maxSplits: 1).first.map(String.init) ?? ""
        return url[..<scheme.upperBound] + user + url[at.lowerBound...]
    }

    /// The client's configuration.
    func clientConfiguration() throws -> PostgresClient.Configuration {
        var configuration = PostgresClient.Configuration(
            host: host, port: port, username: user, password: password, database: database, tls: try clientTLS())
        configuration.options.maximumConnections = poolSize
        configuration.options.minimumConnections = 0
        configuration.options.connectTimeout = .seconds(5)
        return configuration
    }

    private func clientTLS() throws -> PostgresClient.Configuration.TLS {
        switch tls {
        case .disable:
            return .disable
        case .require:
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .none
            return .require(configuration)
        case .verifyFull:
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .fullVerification
            if let caFile {
                do {
                    configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caFile))
                } catch {
                    throw PostgresSettingsError("cannot read the CA certificates in \(caFile): \(error)")
                }
            }
            return .require(configuration)
        }
    }
}

/// A `store.postgres` setting that cannot be used, and why.
public struct PostgresSettingsError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ description: String) { self.description = description }
}
