import ArgumentParser
import Foundation
import TetherConfig
import TetherCore
import TetherEngine
import TetherStore

/// The SPEC §13 benchmarks that run in-process: cold start and no-op reconciliation on a
/// generated workload, and HR leaver and LDAP change latency against a running `tether serve`.
/// `scripts/bench` drives them, together with `wrk` and the memory readings.
@main
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tether-bench",
        abstract: "Measures Tether against the SPEC §13 budget on a workload from scripts/gen-workload.",
        subcommands: [
            ColdStart.self, NoOp.self, Leavers.self, Syncrepl.self, DecisionsBench.self, Failover.self, CheckRate.self, Wakeups.self,
        ])
}

/// The sizes scripts/gen-workload wrote to `workload.json`.
struct WorkloadSummary: Decodable {
    var people: Int
    var teams: Int

    static func read(_ workload: String) throws -> WorkloadSummary {
        try JSONDecoder().decode(Self.self, from: Data(contentsOf: URL(fileURLWithPath: workload + "/workload.json")))
    }
}

/// Options shared by the in-process benchmarks.
struct WorkloadOptions: ParsableArguments {
    @Option(help: "The folder scripts/gen-workload wrote (directory.ldif, tether.yaml).")
    var workload: String
    @Option(help: "The configuration to read instead of the workload's tether.yaml (its store, its policies).")
    var config: String?

    var configPath: String { config ?? workload + "/tether.yaml" }

    /// The engine configuration `tether serve` would build from the workload's tether.yaml.
    /// The engine's configuration, and the store's (path and durability) as the daemon reads it.
    func engineConfiguration() throws -> (EngineConfiguration, store: StoreConfiguration) {
        let loaded: LoadedConfiguration
        do {
            loaded = try ConfigurationLoader.load(path: configPath)
        } catch {
            throw ValidationError("\(configPath): \(error.description)")
        }
        let configuration = loaded.configuration
        let engine = EngineConfiguration(
            policySet: configuration.policySet, lifecycle: Lifecycle(precedence: configuration.lifecycle.precedence),
            correlator: Correlator(keys: configuration.lifecycle.correlate), safety: configuration.safety,
            targets: configuration.targets.map(\.id))
        return (engine, configuration.store)
    }

    /// The store the workload's configuration names: its SQLite file, or its PostgreSQL
    /// database (`store.postgres`, SPEC §14).
    static func open(_ configuration: StoreConfiguration) async throws -> any DaemonStore {
        guard let postgres = configuration.postgres else {
            return try SQLiteStateStore(path: configuration.sqlite, syncEachCommit: configuration.synchronous == .full)
        }
        let password = try postgres.passwordFile.map { String(decoding: try SecretFile.read($0), as: UTF8.self) }
        return try await PostgresStateStore(
            settings: PostgresSettings(
                location: postgres.url, password: password, tls: postgres.tls, caFile: postgres.caFile, poolSize: postgres.poolSize))
    }
}

/// Empty store → every identity and grant committed, through `Engine.applySnapshot`.
struct ColdStart: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cold", abstract: "Empty store → the workload's identities and grants committed.")

    @OptionGroup var options: WorkloadOptions

    func run() async throws {
        let (configuration, storeConfiguration) = try options.engineConfiguration()
        // A PostgreSQL database is expected empty (scripts/bench-postgres creates it).
        if storeConfiguration.postgres == nil {
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: storeConfiguration.sqlite + suffix) }
        }
        var watch = Stopwatch()
        let users = try Directory.read(ldif: options.workload + "/directory.ldif")
        let parsed = watch.lap()
        let store = try await WorkloadOptions.open(storeConfiguration)
        let engine = Engine(store: store, configuration: configuration)
        watch = Stopwatch()
        let outcome = try await engine.applySnapshot(DirectorySnapshot(source: .ldap, users: users, mode: "poll"))
        let applied = watch.lap()
        guard case .applied(let plan) = outcome else {
            throw ValidationError("the cold-start plan was held: \(outcome.plan.held ?? "")")
        }
        // The commit leaves its log to a checkpoint (the daemon's checkpointer service): time that
        // separately.
        watch = Stopwatch()
        let sqlite = store as? SQLiteStateStore
        try await sqlite?.checkpointFully()
        let checkpointed = watch.lap()
        let grants = try await store.grantCount()
        Report.line("cold.ldif_parse_seconds", Report.seconds(parsed), note: "\(users.count) users (not part of the figure)")
        Report.line("cold.identities", "\(users.count)")
        Report.line("cold.grants", "\(grants)", note: "plan granted \(plan.grants)")
        Report.line(
            "cold.seconds", Report.seconds(applied),
            note: storeConfiguration.postgres == nil ? "budget ≤ 60 s" : "budget ≤ 120 s on PostgreSQL")
        if sqlite != nil {
            Report.line(
                "cold.checkpoint_seconds", Report.seconds(checkpointed),
                note: "after the commit: the log copied into the database file and synced (not part of the figure)")
        }
        Report.line("cold.bench_peak_rss_mib", Report.mib(ProcessMemory.peakResidentBytes()))
    }
}

/// Full reconciliations on a store that is already in the desired state.
struct NoOp: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "noop", abstract: "Full reconciliations that find nothing to change.")

    @OptionGroup var options: WorkloadOptions
    @Option(help: "How many reconciliations to time.") var runs = 3

    func run() async throws {
        let (configuration, storeConfiguration) = try options.engineConfiguration()
        let store = try await WorkloadOptions.open(storeConfiguration)
        let engine = Engine(store: store, configuration: configuration)
        let grants = try await store.grantCount()
        var times: [Duration] = []
        for _ in 0..<runs {
            var watch = Stopwatch()
            let outcome = try await engine.reconcile(origin: .other, actor: .policy)
            times.append(watch.lap())
            guard outcome.plan.isEmpty, outcome.plan.held == nil else {
                throw ValidationError("not a no-op: \(outcome.plan.steps.count) steps, held: \(outcome.plan.held ?? "no")")
            }
        }
        Report.line("noop.grants", "\(grants)")
        Report.line("noop.runs_seconds", times.map(Report.seconds).joined(separator: " "))
        Report.line("noop.seconds", Report.seconds(times.sorted()[times.count / 2]), note: "median; budget ≤ 5 s")
        Report.line("noop.bench_peak_rss_mib", Report.mib(ProcessMemory.peakResidentBytes()))
    }
}
