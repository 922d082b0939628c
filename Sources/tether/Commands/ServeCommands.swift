import ArgumentParser
import Foundation
import TetherConfig
import TetherDaemon

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the daemon in the foreground (exit 0 on SIGTERM, 2 on a bad configuration).")
    @OptionGroup var options: GlobalOptions

    func run() async throws {
        let code = await Daemon.run(configPath: options.configPath)
        if code != .ok { throw ExitCode(code.rawValue) }
    }
}

struct CheckConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config", abstract: "Validate the configuration and policies; print every finding with its location.")
    @OptionGroup var options: GlobalOptions

    func run() async throws {
        do {
            let loaded = try ConfigurationLoader.load(path: options.configPath)
            for warning in loaded.warnings { print(warning.description) }
            let configuration = loaded.configuration
            // The loader never opens secret files: the signing key is read here, and in `serve`.
            if let key = try configuration.audit.signingKey(file: loaded.file) {
                print("audit checkpoints: the chain head is signed every \(ConfigurationDuration.format(configuration.audit.checkpointInterval)) in which records were added, with key \(key.publicKey.id)")
            }
            print("\(options.configPath): ok — \(configuration.agents.count) agents, \(configuration.policies.count) policies, policy set \(configuration.policySet.hash)")
        } catch {
            print(error.description)
            throw ExitCode(2)
        }
    }
}

struct Reload: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Reload the configuration in the running daemon, like SIGHUP (exit 2 when rejected).")
    @OptionGroup var options: GlobalOptions

    func run() async throws {
        let reply = try options.call("POST", "/v1/reload")
        struct Answer: Decodable { var message: String? }
        let answer = try options.decode(Answer.self, reply, failure: reply.status == 422 ? 2 : 1)
        print("reloaded: \(answer.message ?? "")")
    }
}
