import Foundation
import Logging
import TetherConfig
import TetherCore
import TetherLDAP

/// Times Tether's full read of a directory: every page of people and groups, mapped to
/// identity facts with transitive groups and managers resolved (SPEC §13, first figure).
///
/// `scripts/bench-ldap` runs it beside `ldapsearch -E pr=500/noprompt` on the same slapd;
/// `scripts/bench-ad-ranges` reads a large Active Directory group (Samba) whole and in ranges.
@main
struct BenchLDAP {
    static let usage = """
        usage: tether-bench-ldap --url URL --users-base DN [--groups-base DN] [--bind-dn DN --password-file FILE]
                                 [--page-size N] [--runs N] [--users-filter F] [--groups-filter F]
                                 [--external-id ATTR] [--user-name ATTR] [--member-attributes A,B]
                                 [--range-size N]
        Prints one line per run: users, groups, facts, the largest group's members and
        seconds; then the best run as tether_full_read_seconds=S. --range-size asks Active
        Directory for group members in ranges of N values (rangeSize).
        """

    static func main() async {
        do {
            try await run(Array(CommandLine.arguments.dropFirst()))
        } catch {
            FileHandle.standardError.write(Data("tether-bench-ldap: \(error)\n".utf8))
            exit(1)
        }
    }

    static func run(_ arguments: [String]) async throws {
        var options: [String: String] = [:]
        var index = 0
        while index < arguments.count {
            let key = arguments[index]
            guard key.hasPrefix("--"), index + 1 < arguments.count else {
                print(usage)
                exit(2)
            }
            options[String(key.dropFirst(2))] = arguments[index + 1]
            index += 2
        }
        guard let url = options["url"], let usersBase = options["users-base"] else {
            print(usage)
            exit(2)
        }
        var mapping = LDAPMappingConfiguration()
        if let externalId = options["external-id"] { mapping.externalId = externalId }
        if let userName = options["user-name"] { mapping.userName = userName }
        let configuration = LDAPConfiguration(
            url: url, bindDN: options["bind-dn"], bindPasswordFile: options["password-file"],
            users: LDAPUsersConfiguration(
                base: usersBase, filter: options["users-filter"] ?? LDAPUsersConfiguration.defaultFilter),
            groups: options["groups-base"].map { base in
                LDAPGroupsConfiguration(
                    base: base, filter: options["groups-filter"] ?? LDAPGroupsConfiguration.defaultFilter,
                    memberAttributes: options["member-attributes"].map { $0.split(separator: ",").map(String.init) }
                        ?? ["member", "uniqueMember"])
            },
            mapping: mapping, pageSize: Int(options["page-size"] ?? "500") ?? 500, timeout: .seconds(300),
            rangeSize: options["range-size"].flatMap { Int($0) })
        let runs = Int(options["runs"] ?? "1") ?? 1
        var logger = Logger(label: "tether.bench.ldap")
        logger.logLevel = .warning

        var best: Duration?
        for run in 1...max(runs, 1) {
            let started = ContinuousClock.now
            let (model, facts) = try await readAndMap(configuration, logger: logger)
            let elapsed = ContinuousClock.now - started
            let (users, groups) = (model.userCount, model.groups.count)
            let members = model.groups.values.map { $0.memberDNs.count }.max() ?? 0
            best = min(best ?? elapsed, elapsed)
            print(
                "run=\(run) users=\(users) groups=\(groups) facts=\(facts.count) members=\(members) seconds=\(seconds(elapsed))")
        }
        print("tether_full_read_seconds=\(seconds(best ?? .zero))")
    }

    /// One full read: connect, bind, page through groups and people, map, resolve; the
    /// same `DirectoryReader` the LDAP source uses for its full scans.
    ///
    /// Returns what it built, so that freeing it falls outside the timing.
    static func readAndMap(
        _ configuration: LDAPConfiguration, logger: Logger
    ) async throws -> (DirectoryModel, [IdentityFacts]) {
        let started = ContinuousClock.now
        let connection = LDAPConnection(options: LDAPConnectionOptions(configuration), logger: logger)
        try await connection.open()
        var (model, _) = try await DirectoryReader(configuration: configuration).read(connection)
        await connection.close()
        let read = ContinuousClock.now
        let facts = model.allFacts()
        let mapped = ContinuousClock.now
        FileHandle.standardError.write(Data(
            "phases: read and map \(seconds(read - started)) s, groups and managers resolved \(seconds(mapped - read)) s\n".utf8))
        return (model, facts)
    }

    static func seconds(_ duration: Duration) -> String {
        let (whole, attoseconds) = duration.components
        return String(format: "%.3f", Double(whole) + Double(attoseconds) / 1e18)
    }
}
