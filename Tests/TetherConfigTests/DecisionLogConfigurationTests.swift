import Testing
import TetherConfig
import TetherCore

/// `check.log` (SPEC §16): its defaults, each value, and located errors.
@Suite struct DecisionLogConfigurationTests {
    @Test func defaultsRecordEveryAnswerBesideTheStoreForThirtyDays() throws {
        let log = try #require(loaded("store: { sqlite: /var/lib/tether/tether.db }\n")).configuration.check.log
        #expect(log.allows == .all && log.queueSize == 65_536 && log.retention == .seconds(30 * 86_400) && log.path == nil)
        #expect(log.path(store: "/var/lib/tether/tether.db") == "/var/lib/tether/tether-decisions.db")
        #expect(log.path(store: "/srv/state") == "/srv/state-decisions.db")
    }

    @Test(arguments: [("all", AllowLogging.all), ("none", .none), ("sample 100", .sample(100)), ("sample 1", .all)])
    func allows(text: String, expected: AllowLogging) throws {
        let yaml = "check:\n  log:\n    allows: \(text)\n    queueSize: 1_000\n    path: decisions/log.db\n    retention: 7d\n"
        let log = try #require(loaded(yaml)).configuration.check.log
        #expect(log.allows == expected)
        #expect(log.queueSize == 1_000 && log.retention == .seconds(7 * 86_400))
        #expect(log.path == "/srv/tether/conf/decisions/log.db", "relative to the configuration file")
    }

    @Test(arguments: [
        ("allows: sample", "check.log.allows", "expected all, none or sample N"),
        ("allows: sample 0", "check.log.allows", "invalid value 'sample 0'"),
        ("allows: some", "check.log.allows", "invalid value 'some'"),
        ("queueSize: 0", "check.log.queueSize", "must be at least 1"),
        ("retention: forever", "check.log.retention", "invalid duration 'forever'"),
        ("retention: 0s", "check.log.retention", "must be longer than zero"),
        ("alows: all", "check.log.alows", "did you mean 'allows'?"),
    ])
    func invalidValuesAreLocated(line: String, keyPath: String, message: String) {
        expectSingleError(rejection("check:\n  log:\n    \(line)\n"), keyPath: keyPath, line: 3, message)
    }

    @Test func theLogCannotBeTheStore() {
        let error = rejection("store: { sqlite: /srv/tether.db }\ncheck:\n  log: { path: /srv/tether.db }\n")
        expectSingleError(error, keyPath: "check", line: 3, "is the store's own file")
    }

    /// On PostgreSQL every node records its decisions in the database: a path is unused, and
    /// said to be, at the `check` section.
    @Test func aPathBesidePostgreSQLIsUnusedAndSaidToBe() throws {
        let yaml = """
            store: { postgres: { url: "postgres://tether@db.example.com/tether" } }
            check:
              log: { path: /srv/decisions.db }
            """
        let result = try #require(loaded(yaml))
        let warning = try #require(result.warnings.first { $0.keyPath == "check" }, "\(result.warnings)")
        #expect(warning.line == 3 && warning.description.contains("decisions table"), "\(warning)")
        #expect(try #require(loaded("store: { postgres: { url: \"postgres://tether@db/tether\" } }\n")).warnings.isEmpty)
    }
}
