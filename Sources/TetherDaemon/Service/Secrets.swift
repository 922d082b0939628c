import Foundation
import TetherConfig
import TetherCore
import TetherHTTP

/// Reads the secret files the configuration names. Contents never reach a log or an error
/// message: only the path and what is wrong with the file.
enum Secrets {
    struct Unreadable: Error, CustomStringConvertible {
        let description: String
    }

    /// The secret in the file at `path`, read by the one rule of ``SecretFile``; `what` names
    /// the setting in the error.
    static func read(_ path: String, what: String) throws -> Data {
        do throws(SecretFile.Unusable) {
            return Data(try SecretFile.read(path))
        } catch {
            throw Unreadable(description: "\(what) \(error.description)")
        }
    }

    /// The HR webhook and check API credentials of `configuration`.
    static func access(for configuration: Configuration) throws -> (hr: HRWebhookConfiguration?, check: BearerTokens?) {
        var hr: HRWebhookConfiguration?
        if let section = configuration.sources.hr {
            let files = try section.secretFiles.map { try read($0, what: "sources.hr.secretFiles:") }
            guard let secrets = WebhookSecrets(fileContents: files) else {
                throw Unreadable(description: "sources.hr.secretFiles: no usable secret")
            }
            hr = HRWebhookConfiguration(section, secrets: secrets)
        }
        var check: BearerTokens?
        if let path = configuration.check.tokenFile {
            let contents = try read(path, what: "check.tokenFile:")
            let tokens: BearerTokens?
            do throws(BearerTokens.Malformed) {
                tokens = try BearerTokens(fileContents: contents)
            } catch {
                throw Unreadable(description: "check.tokenFile: \(path) \(error.description)")
            }
            guard let tokens else { throw Unreadable(description: "check.tokenFile: \(path) holds no token") }
            check = tokens
        }
        return (hr, check)
    }

    /// The SCIM bearer tokens, one per line (several during a rotation).
    static func scimTokens(for configuration: Configuration) throws -> [String]? {
        guard let section = configuration.sources.scim else { return nil }
        let text = String(decoding: try read(section.tokenFile, what: "sources.scim.tokenFile:"), as: UTF8.self)
        return text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
}

/// The credentials the public listener checks, read from the files the configuration names:
/// the HR webhook secrets, the check API tokens and the SCIM tokens.
package struct ListenerCredentials: Sendable {
    /// The HR webhook settings and secrets; nil without `sources.hr`.
    package var hr: HRWebhookConfiguration?
    /// The check API's bearer tokens; nil without `check.tokenFile`.
    package var checkTokens: BearerTokens?
    /// The SCIM bearer tokens; nil when SCIM is not served.
    package var scimTokens: [String]?
    /// The secret the nodes on one store sign operator commands with (`ha.peerSecretFile`).
    package var peerSecret: [UInt8]?

    /// Reads every file; throws naming the first that is missing, unreadable or empty.
    package init(for configuration: Configuration) throws {
        (hr, checkTokens) = try Secrets.access(for: configuration)
        scimTokens = try Secrets.scimTokens(for: configuration)
        if configuration.store.postgres != nil, let path = configuration.ha.peerSecretFile {
            let secret = Array(try Secrets.read(path, what: "ha.peerSecretFile:"))
            guard secret.count >= PeerSignature.minimumSecretBytes else {
                throw Secrets.Unreadable(
                    description: "ha.peerSecretFile: \(path) holds \(secret.count) bytes; a secret the nodes share needs at least "
                        + "\(PeerSignature.minimumSecretBytes) (make one with: openssl rand -hex 32)")
            }
            peerSecret = secret
        }
    }
}
