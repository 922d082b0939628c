import Foundation
import Logging
import TetherConfig
import TetherCore
import TetherEngine
import TetherHTTP
import TetherSCIM

/// Reloads the configuration file on SIGHUP or `tether reload`: validate, then swap, or
/// keep the running configuration and audit `config.rejected`.
public struct ConfigurationReloader: Sendable {
    let state: DaemonState
    let engine: Engine
    let access: APIAccess
    /// The SCIM tokens in force; nil when SCIM is not served.
    let scim: SCIMCredentials?
    let notifier: SystemdNotifier
    let logger: Logger

    /// Validates and applies the file; the error lists every finding with its location.
    public func reload(actor: Actor) async -> Result<String, ReloadFailure> {
        notifier.notify("RELOADING=1\nMONOTONIC_USEC=\(SystemdNotifier.monotonicMicroseconds())\nSTATUS=reloading configuration")
        defer { notifier.notify("READY=1\nSTATUS=serving") }
        let path = await state.configPath
        let previous = await state.configuration
        do {
            let next: LoadedConfiguration
            do {
                next = try ConfigurationLoader.load(path: path)
            } catch {
                logger.error("configuration rejected; keeping the running one", metadata: ["errors": "\(error.errors.count)", "file": "\(path)"])
                await state.reject(error.description)
                try? await engine.recordRejectedConfiguration(error.description, actor: actor)
                return .failure(ReloadFailure(description: error.description))
            }
            let credentials: ListenerCredentials
            do {
                credentials = try ListenerCredentials(for: next.configuration)
            } catch {
                let message = "\(path): \(error)"
                logger.error("configuration rejected; keeping the running one", metadata: ["error": "\(error)"])
                await state.reject(message)
                try? await engine.recordRejectedConfiguration(message, actor: actor)
                return .failure(ReloadFailure(description: message))
            }
            for warning in next.warnings { logger.warning("\(warning.description)") }
            let restartNeeded = Self.restartOnlyChanges(from: previous, to: next.configuration)
            // The engine records the new configuration before it takes effect anywhere: if
            // that commit fails, policies, safety limits, secrets and tokens all stay as they were.
            try await engine.adopt(next.engineConfiguration, actor: actor)
            await state.accept(next, at: Date())
            access.update(hr: credentials.hr, checkTokens: credentials.checkTokens)
            if let scim, let scimTokens = credentials.scimTokens { scim.update(tokens: scimTokens) }
            do {
                try await engine.reconcile(origin: .other, actor: .policy)
            } catch {
                // In force and recorded: the reconcile timer brings grants in line later.
                logger.error(
                    "configuration reloaded, but reconciling under it failed; the next reconciliation retries",
                    metadata: ["error": "\(error)"])
            }
            var summary = "policy set \(next.configuration.policySet.hash)"
            if !restartNeeded.isEmpty {
                summary += "; takes effect after a restart: \(restartNeeded.joined(separator: ", "))"
                logger.warning("configuration reloaded; some settings need a restart", metadata: ["settings": "\(restartNeeded.joined(separator: ","))"])
            }
            logger.notice("configuration reloaded", metadata: ["policySet": "\(next.configuration.policySet.hash)", "actor": "\(actor)"])
            return .success(summary)
        } catch {
            // The file was valid but the store refused the record of it: nothing was swapped.
            logger.error("configuration could not be recorded; keeping the running one", metadata: ["error": "\(error)"])
            await state.reject("\(error)")
            return .failure(ReloadFailure(
                description: "the configuration is valid but could not be recorded, so the running one stays in force: \(error)"))
        }
    }

    /// Settings the running daemon cannot change in place. A reload applies policy, agents,
    /// lifecycle and safety, `sources.hr` (secrets and tolerance), `check` (its token file) and
    /// the SCIM token file; turning SCIM on or off needs a restart, as its routes are fixed, and
    /// so does `check.log` (the decision log's queue and file are made at start).
    static func restartOnlyChanges(from old: Configuration, to new: Configuration) -> [String] {
        var changed: [String] = []
        if old.store != new.store { changed.append("store") }
        if old.http != new.http { changed.append("http") }
        if old.admin != new.admin { changed.append("admin") }
        if old.sources.ldap != new.sources.ldap { changed.append("sources.ldap") }
        if (old.sources.scim == nil) != (new.sources.scim == nil) { changed.append("sources.scim") }
        if old.targets != new.targets { changed.append("targets") }
        // The signing key is read at start, and checkpoints keep being made with it until a restart.
        if old.audit != new.audit { changed.append("audit") }
        if old.check.log != new.check.log { changed.append("check.log") }
        return changed
    }
}

/// Why a reload did not take effect; the description lists every finding with its location.
public struct ReloadFailure: Error, CustomStringConvertible, Sendable {
    public let description: String
}
