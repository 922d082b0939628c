import ArgumentParser
import Foundation
import TetherConfig
import TetherDaemon

/// `tether`: the daemon and its operator commands in one binary.
@main
struct Tether: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tether",
        abstract: "Keeps AI-agent entitlements tied to live identities.",
        discussion: "Operator commands reach the running daemon over its admin socket; `audit` reads the store directly, `decisions` the decision log's; `store copy` works on a stopped deployment's store.",
        version: BuildInfo.current.description,
        subcommands: [
            Serve.self, CheckConfig.self, Status.self, Resync.self, PlanCommand.self, Plans.self, Approve.self, Reject.self,
            Grants.self, Identities.self, Agents.self, Exceptions.self, Reviews.self, Explain.self, Audit.self, Decisions.self, Ingest.self,
            Reload.self, Store.self,
            Completions.self,
        ])
}

/// `--config` and `--socket`, shared by every command.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "Configuration file (default: $TETHER_CONFIG, else /etc/tether/tether.yaml).")
    var config: String?

    @Option(name: .long, help: "Admin socket path (default: admin.socket from the configuration).")
    var socket: String?

    var configPath: String { config ?? ConfigurationLoader.defaultPath() }

    /// The admin socket: `--socket`, else the configuration's, else the default.
    func client() -> AdminClient {
        AdminClient(socketPath: socket ?? ConfigurationLoader.locations(path: configPath).socket)
    }

    /// Sends a request; an unreachable daemon is exit 1 naming the socket path.
    func call(_ method: String, _ path: String, body: Data = Data()) throws -> AdminClient.Reply {
        do {
            return try client().request(method, path, body: body)
        } catch {
            Output.error("\(error)")
            throw ExitCode(1)
        }
    }

    /// Decodes a successful reply, or prints the daemon's error and exits `failure`.
    func decode<T: Decodable>(_ type: T.Type, _ reply: AdminClient.Reply, failure: Int32 = 1) throws -> T {
        guard (200..<300).contains(reply.status) else {
            Output.error(Self.errorText(reply))
            throw ExitCode(failure)
        }
        return try JSONDecoder().decode(type, from: reply.body)
    }

    static func errorText(_ reply: AdminClient.Reply) -> String {
        struct Body: Decodable {
            var error: String?
            var detail: String?
            var message: String?
        }
        if let body = try? JSONDecoder().decode(Body.self, from: reply.body) {
            return [body.error ?? body.message, body.detail].compactMap { $0 }.joined(separator: "\n")
        }
        return "daemon answered \(reply.status): \(String(decoding: reply.body, as: UTF8.self))"
    }
}

/// Percent-encodes a query or path value.
func encoded(_ value: String) -> String {
    value.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~"))) ?? value
}
