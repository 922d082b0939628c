import Foundation
import NIOSSL
import PostgresNIO
import TetherCore

/// Where the PostgreSQL backend connects and how (SPEC §14, `store.postgres`).
public struct PostgresSettings: Sendable, Hashable {
    public typealias TLSMode = PostgresTLS

    /// The server, the user and the database.
    public var location: PostgresURL
    /// Read from `store.postgres.passwordFile`, never from the URL.
    public var password: String?
    public var tls: TLSMode
    public var caFile: String?
    /// Connections the daemon keeps open at most.
    public var poolSize: Int

    public init(location: PostgresURL, password: String? = nil, tls: TLSMode = .disable, caFile: String? = nil, poolSize: Int = 8) {
        self.location = location
        self.password = password
        self.tls = tls
        self.caFile = caFile
        self.poolSize = poolSize
    }

    /// Settings for the database `url` names (``PostgresURL``).
    public init(url: String, password: String? = nil, tls: TLSMode = .disable, caFile: String? = nil, poolSize: Int = 8) throws {
        self.init(location: try PostgresURL(url), password: password, tls: tls, caFile: caFile, poolSize: poolSize)
    }

    /// The URL without a password, as logs and errors may show it.
    public var url: String { location.description }

    /// The client's configuration.
    func clientConfiguration() throws -> PostgresClient.Configuration {
        var configuration = PostgresClient.Configuration(
            host: location.host, port: location.port, username: location.user, password: password, database: location.database,
            tls: try clientTLS())
        configuration.options.maximumConnections = poolSize
        configuration.options.minimumConnections = 0
        configuration.options.connectTimeout = .seconds(5)
        return configuration
    }

    /// One connection's configuration: what the store's first contact uses, so that what
    /// keeps it from connecting is reported at once instead of retried by the pool.
    func connectionConfiguration() throws -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS =
            switch try tlsConfiguration() {
            case nil: .disable
            case let configuration?: .require(try NIOSSLContext(configuration: configuration))
            }
        var configuration = PostgresConnection.Configuration(
            host: location.host, port: location.port, username: location.user, password: password, database: location.database,
            tls: tls)
        configuration.options.connectTimeout = .seconds(5)
        return configuration
    }

    private func clientTLS() throws -> PostgresClient.Configuration.TLS {
        try tlsConfiguration().map { .require($0) } ?? .disable
    }

    /// The TLS client configuration `tls` asks for; nil for none.
    private func tlsConfiguration() throws -> TLSConfiguration? {
        switch tls {
        case .disable:
            return nil
        case .require:
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .none
            return configuration
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
            return configuration
        }
    }
}

/// A `store.postgres` setting that cannot be used, and why.
public struct PostgresSettingsError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ description: String) { self.description = description }
}
