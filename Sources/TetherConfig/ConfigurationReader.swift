import Foundation
import TetherCore
import Yams

/// Walks a composed document and builds a ``Configuration``, reporting every problem it meets.
///
/// Readers never stop at a problem: they report it, substitute the default and carry on, so
/// one pass finds every error. The result is only used when no error was reported.
struct ConfigurationReader {
    let log: FindingLog
    /// Absolute folder of the configuration file; relative paths are resolved against it.
    let baseDirectory: String

    static let topLevelKeys = [
        "store", "http", "admin", "check", "lifecycle", "sources", "agents", "policies", "safety", "targets",
        "exceptions", "audit",
        "usage", "reviews", "ha",
    ]

    func readConfiguration(_ root: Node?) -> Configuration {
        guard let root else { return Configuration() }
        let document = ConfigNode(node: root, path: .root, log: log)
        if document.isNull { return Configuration() }
        guard let top = document.mapping(allowed: Self.topLevelKeys, expected: "a mapping of sections (store, http, …)")
        else { return Configuration() }

        let sources = top.optional("sources").map(readSources) ?? SourcesConfiguration()
        let (agents, minSponsors) = top.optional("agents").map(readAgentsSection) ?? ([], 1)
        let policies = top.optional("policies").map { readPolicies($0, agents: agents, sources: sources) } ?? []
        checkAgentUse(agents: agents, policies: policies)

        var configuration = Configuration(
            store: top.optional("store").map(readStore) ?? StoreConfiguration(),
            http: top.optional("http").map(readHTTP) ?? HTTPConfiguration(),
            admin: top.optional("admin").map(readAdmin) ?? AdminConfiguration(),
            check: top.optional("check").map(readCheck) ?? CheckConfiguration(),
            lifecycle: top.optional("lifecycle").map(readLifecycle) ?? LifecycleConfiguration(),
            sources: sources,
            agents: agents.compactMap(\.agent),
            policies: policies.compactMap(\.policy),
            safety: top.optional("safety").map(readSafety) ?? SafetyLimits(),
            targets: top.optional("targets").map(readTargets) ?? [],
            exceptions: top.optional("exceptions").map(readExceptions) ?? ExceptionsConfiguration(),
            groupReferences: policies.flatMap(\.groupReferences),
            audit: top.optional("audit").map(readAudit) ?? AuditConfiguration())
        configuration.usage = top.optional("usage").map(readUsage) ?? UsageConfiguration()
        configuration.reviews = top.optional("reviews").map(readReviews) ?? ReviewsConfiguration()
        configuration.ha = top.optional("ha").map(readHA) ?? HAConfiguration()
        if let ha = top.value("ha"), configuration.store.postgres == nil {
            ha.error("ha is read only with store.postgres: several daemons share a PostgreSQL store, never a SQLite file")
        }
        configuration.minSponsors = minSponsors
        checkDecisionLogPath(top, configuration: configuration)

        let declaresSource: Bool
        if case .mapping(let mapping)? = top.optional("sources")?.node {
            declaresSource = !mapping.isEmpty
        } else {
            declaresSource = false
        }
        if !declaresSource, !configuration.policies.isEmpty || !configuration.agents.isEmpty {
            let location = top.value("sources")?.location ?? document.location
            log.report(
                .warning,
                "no identity source is configured (sources.ldap, sources.scim or sources.hr); no identity will "
                    + "receive grants and every agent's sponsor stays unknown", at: location)
        }
        return configuration
    }

    // MARK: - store, http, admin, check

    func readStore(_ node: ConfigNode) -> StoreConfiguration {
        var store = StoreConfiguration()
        guard let map = node.mapping(allowed: ["sqlite", "synchronous", "postgres"]) else { return store }
        if let path = map.optional("sqlite").flatMap(resolvedPath) { store.sqlite = path }
        if let synchronous = map.optional("synchronous")?.oneOf(StoreConfiguration.Synchronous.self) {
            store.synchronous = synchronous
        }
        if let postgres = map.optional("postgres") {
            store.postgres = readPostgres(postgres)
            if let sqlite = map.optional("sqlite") {
                sqlite.error("store.sqlite and store.postgres name two stores; keep one (store.postgres replaces store.sqlite)")
            }
            if let synchronous = map.optional("synchronous") {
                synchronous.error("store.synchronous is SQLite's; PostgreSQL's durability is the server's synchronous_commit")
            }
        }
        return store
    }

    func readPostgres(_ node: ConfigNode) -> PostgresStoreConfiguration? {
        guard let map = node.mapping(allowed: ["url", "passwordFile", "tls", "caFile", "poolSize"]) else { return nil }
        var url: PostgresURL?
        if let field = map.required("url", hint: "the database, postgres://USER@HOST:PORT/DATABASE"),
            let text = field.string("postgres://USER@HOST:PORT/DATABASE")
        {
            do {
                url = try PostgresURL(text)
            } catch {
                field.error(error.description)
            }
        }
        let passwordFile = map.optional("passwordFile").flatMap(resolvedPath)
        let tls = map.optional("tls")?.oneOf(PostgresTLS.self) ?? .disable
        let caFile = map.optional("caFile").flatMap(resolvedPath)
        if let field = map.optional("caFile"), tls != .verifyFull {
            field.error("caFile is read only with tls: verify-full; set tls: verify-full or remove caFile")
        }
        let poolSize = map.optional("poolSize")?.int(atLeast: 2, atMost: 1_000, expected: "a number of connections")
        guard let url else { return nil }
        return PostgresStoreConfiguration(
            url: url, passwordFile: passwordFile, tls: tls, caFile: caFile, poolSize: poolSize ?? PostgresStoreConfiguration.defaultPoolSize)
    }

    func readHTTP(_ node: ConfigNode) -> HTTPConfiguration {
        var http = HTTPConfiguration()
        guard let map = node.mapping(allowed: ["listen", "maxBodyBytes", "requestTimeout", "maxConnections", "realtimePriority"]) else { return http }
        if let listen = map.optional("listen"), let text = listen.string("host:port, e.g. 127.0.0.1:8080") {
            if let (host, port) = Self.hostAndPort(text) {
                http.host = host
                http.port = port
            } else {
                listen.error(
                    "invalid listen address '\(text)'; expected host:port with a port from 0 to 65535, "
                        + "e.g. 127.0.0.1:8080 or [::1]:8080")
            }
        }
        if let value = map.optional("maxBodyBytes")?.int(atLeast: 1, expected: "a number of bytes") {
            http.maxBodyBytes = value
        }
        if let timeout = map.optional("requestTimeout")?.duration() { http.requestTimeout = timeout }
        if let value = map.optional("maxConnections")?.int(atLeast: 1, atMost: 1_000_000, expected: "a number of connections") {
            http.maxConnections = value
        }
        if let value = map.optional("realtimePriority")?.int(
            atLeast: Int(ThreadScheduling.priorities.lowerBound), atMost: Int(ThreadScheduling.priorities.upperBound),
            expected: "a real-time priority") {
            http.realtimePriority = value
        }
        return http
    }

    /// Splits `host:port` (`[v6]:port` for IPv6) into its parts.
    static func hostAndPort(_ text: String) -> (String, Int)? {
        let host: Substring
        let portText: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                return nil
            }
            host = text[text.index(after: text.startIndex)..<close]
            portText = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") else { return nil }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        guard !host.isEmpty, !host.contains(where: \.isWhitespace), portText.allSatisfy(\.isASCII),
            let port = Int(portText), (0...65_535).contains(port)
        else { return nil }
        return (String(host), port)
    }

    func readAdmin(_ node: ConfigNode) -> AdminConfiguration {
        var admin = AdminConfiguration()
        guard let map = node.mapping(allowed: ["socket", "mode", "group"]) else { return admin }
        if let socketNode = map.optional("socket"), let path = resolvedPath(socketNode) {
            // sockaddr_un.sun_path holds 108 bytes on Linux, including the terminating NUL.
            if path.utf8.count > 107 {
                socketNode.error(
                    "the socket path '\(path)' is \(path.utf8.count) bytes; Unix socket paths are limited to 107 bytes, "
                        + "choose a shorter one")
            } else {
                admin.socket = path
            }
        }
        if let modeNode = map.optional("mode"), let text = modeNode.string("an octal file mode such as \"0660\"") {
            let digits = text.hasPrefix("0o") ? String(text.dropFirst(2)) : text
            if (3...4).contains(digits.count), let mode = Int(digits, radix: 8), mode <= 0o7777 {
                admin.mode = mode
            } else {
                modeNode.error("invalid file mode '\(text)'; expected an octal mode in quotes, e.g. \"0660\"")
            }
        }
        if let groupNode = map.optional("group"), let name = groupNode.string("a Unix group name such as tether-operators") {
            // useradd's rule for portable names: a letter or _, then letters, digits, _ or -.
            let valid = name.utf8.count <= 32 && name.first.map { $0 == "_" || ($0.isASCII && $0.isLetter) } == true
                && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }
            if valid {
                admin.group = name
            } else {
                groupNode.error("invalid group name '\(name)'; expected a Unix group name such as tether-operators")
            }
        }
        return admin
    }

    func readCheck(_ node: ConfigNode) -> CheckConfiguration {
        var check = CheckConfiguration()
        guard let map = node.mapping(allowed: ["tokenFile", "log", "maxWait"]) else { return check }
        check.tokenFile = map.optional("tokenFile").flatMap(resolvedPath)
        if let wait = map.optional("maxWait")?.duration(allowZero: true) { check.maxWait = wait }
        if let log = map.optional("log") { check.log = readDecisionLog(log) }
        return check
    }

    func readDecisionLog(_ node: ConfigNode) -> DecisionLogConfiguration {
        var log = DecisionLogConfiguration()
        guard let map = node.mapping(allowed: ["allows", "queueSize", "path", "retention"]) else { return log }
        if let allowsNode = map.optional("allows"), let text = allowsNode.string("all, none or sample N") {
            if let allows = Self.allowLogging(text) {
                log.allows = allows
            } else {
                allowsNode.error(
                    "invalid value '\(text)'; expected all, none or sample N (one allow in N recorded, N a whole number from 1)")
            }
        }
        if let size = map.optional("queueSize")?.int(atLeast: 1, atMost: 10_000_000, expected: "a number of decisions") {
            log.queueSize = size
        }
        if let path = map.optional("path").flatMap(resolvedPath) { log.path = path }
        if let retention = map.optional("retention")?.duration() { log.retention = retention }
        return log
    }

    /// The decision log must not be the store's file, nor one of its companion files.
    func checkDecisionLogPath(_ top: ConfigMapping, configuration: Configuration) {
        if configuration.store.postgres != nil, configuration.check.log.path != nil, let check = top.value("check") {
            log.report(
                .warning, "check.log.path is unused with store.postgres: every node records its decisions in the database's decisions table",
                at: check.location)
            return
        }
        let store = configuration.store.sqlite
        guard let path = configuration.check.log.path, [store, store + "-wal", store + "-shm"].contains(path),
            let check = top.value("check")
        else { return }
        log.report(
            .error, "check.log.path \(path) is the store's own file; name another file for the decision log or leave path out",
            at: check.location)
    }

    /// `all`, `none` or `sample N` (N ≥ 1); nil for anything else.
    static func allowLogging(_ text: String) -> AllowLogging? {
        let words = text.split(whereSeparator: \.isWhitespace)
        switch (words.first, words.count) {
        case ("all"?, 1): return .all
        case ("none"?, 1): return AllowLogging.none
        case ("sample"?, 2):
            guard let n = Int(words[1]), n >= 1 else { return nil }
            return n == 1 ? .all : .sample(n)
        default: return nil
        }
    }

    // MARK: - lifecycle, safety

    func readLifecycle(_ node: ConfigNode) -> LifecycleConfiguration {
        var lifecycle = LifecycleConfiguration()
        guard let map = node.mapping(allowed: ["precedence", "correlate"]) else { return lifecycle }
        if let list = map.optional("precedence") {
            let ranked: [Source] = [.hr, .scim, .ldap]
            if let values = uniqueEnumList(list, allowed: ranked, what: "source") {
                lifecycle.precedence = values
            }
        }
        if let list = map.optional("correlate"),
            let values = uniqueEnumList(list, allowed: CorrelationKey.allCases, what: "correlation key")
        {
            lifecycle.correlate = values
        }
        return lifecycle
    }

    /// A non-empty list of distinct values from `allowed`, each reported where it is wrong.
    func uniqueEnumList<Value: RawRepresentable & Hashable>(
        _ node: ConfigNode, allowed: [Value], what: String
    ) -> [Value]? where Value.RawValue == String {
        let names = allowed.map(\.rawValue).joined(separator: ", ")
        guard let items = node.list("a list of \(what)s (\(names))") else { return nil }
        if items.isEmpty {
            node.error("expected at least one \(what) (\(names)), found an empty list")
            return nil
        }
        var values: [Value] = []
        var failed = false
        for item in items {
            guard let text = item.string("one of: \(names)") else {
                failed = true
                continue
            }
            guard let value = Value(rawValue: text), allowed.contains(value) else {
                let extra = text == "operator" ? " (operator always outranks every source and is not listed)" : ""
                item.error("unknown \(what) '\(text)'; expected one of: \(names)\(extra)")
                failed = true
                continue
            }
            if values.contains(value) {
                item.error("\(what) '\(text)' is listed twice; list each \(what) once")
                failed = true
                continue
            }
            values.append(value)
        }
        return failed ? nil : values
    }

    func readExceptions(_ node: ConfigNode) -> ExceptionsConfiguration {
        var exceptions = ExceptionsConfiguration()
        guard let map = node.mapping(allowed: ["maxDuration"]) else { return exceptions }
        // A duration longer than zero: a grant exception must be able to last some time.
        if let duration = map.optional("maxDuration")?.duration() { exceptions.maxDuration = duration }
        return exceptions
    }

    func readUsage(_ node: ConfigNode) -> UsageConfiguration {
        var usage = UsageConfiguration()
        guard let map = node.mapping(allowed: ["flushInterval"]) else { return usage }
        if let interval = map.optional("flushInterval"), let duration = interval.duration() {
            // Shorter would write the store many times a second for a figure kept in days.
            if duration < .seconds(1) {
                interval.error("must be at least 1s, found '\(interval.string("a duration") ?? "")'")
            } else {
                usage.flushInterval = duration
            }
        }
        return usage
    }

    func readSafety(_ node: ConfigNode) -> SafetyLimits {
        var safety = SafetyLimits()
        guard let map = node.mapping(allowed: ["maxRevocationsPerRun", "maxRevocationRatio", "minGrantsForRatio", "window"])
        else { return safety }
        if let value = map.optional("maxRevocationsPerRun")?.int(atLeast: 0, expected: "a whole number of grants") {
            safety.maxRevocationsPerRun = value
        }
        if let ratioNode = map.optional("maxRevocationRatio"),
            let ratio = ratioNode.number(expected: "a ratio between 0 and 1, e.g. 0.2")
        {
            if (0...1).contains(ratio) {
                safety.maxRevocationRatio = ratio
            } else {
                ratioNode.error(
                    "ratio \(ratioNode.found) is outside 0...1; write a fraction of all grants, e.g. 0.2 for 20%")
            }
        }
        if let value = map.optional("minGrantsForRatio")?.int(atLeast: 0, expected: "a whole number of grants") {
            safety.minGrantsForRatio = value
        }
        // How long a source's revocations count together (SPEC §6): longer than zero.
        if let window = map.optional("window")?.duration() {
            let (seconds, attoseconds) = window.components
            safety.window = Double(seconds) + Double(attoseconds) / 1e18
        }
        return safety
    }

    // MARK: - targets

    func readTargets(_ node: ConfigNode) -> [TargetConfiguration] {
        guard let items = node.list("a list of targets") else { return [] }
        var targets: [TargetConfiguration] = []
        var seen: [String: Int] = [:]
        for item in items {
            guard let map = item.mapping(allowed: ["id", "type", "url", "secretFile", "orphans", "timeout", "maxBackoff", "signatureV1"]) else {
                continue
            }
            let idNode = map.required("id")
            let id = idNode.flatMap { readIdentifier($0, what: "target id") }
            if let id, let idNode {
                if let first = seen[id] {
                    idNode.error("duplicate target id '\(id)'; it is already used at line \(first)")
                } else {
                    seen[id] = idNode.location.line
                }
            }
            let type = map.required("type", hint: "expected http").flatMap { $0.oneOf(TargetType.self) }
            var url: String?
            if let urlNode = map.required(
                "url", hint: "the target's grant collection, e.g. http://127.0.0.1:9400/grants"),
                let text = urlNode.nonEmptyString("an http:// or https:// URL")
            {
                if Self.isHTTPURL(text) {
                    url = text.hasSuffix("/") ? String(text.dropLast()) : text
                } else {
                    urlNode.error("invalid URL '\(text)'; expected an http:// or https:// URL with a host")
                }
            }
            let secretFile = map.required("secretFile", hint: "the HMAC secret that signs requests to the target")
                .flatMap(resolvedPath)
            var orphans: OrphanPolicy? = .report
            if let orphansNode = map.optional("orphans") { orphans = orphansNode.oneOf(OrphanPolicy.self) }
            // A bad duration is a finding, which fails the whole load.
            let timeout = map.optional("timeout")?.duration()
            let maxBackoff = map.optional("maxBackoff")?.duration()
            var signatureV1: Bool? = false
            if let node = map.optional("signatureV1") {
                signatureV1 = node.bool()
                if signatureV1 == true {
                    node.warning(
                        "target '\(id ?? "?")' also receives v1 signatures, which do not cover the method or path: "
                            + "a captured request can be replayed as another within the tolerance; "
                            + "remove signatureV1 once the target verifies v2")
                }
            }
            if let id, let type, let url, let secretFile, let orphans, let signatureV1 {
                targets.append(
                    TargetConfiguration(
                        id: id, type: type, url: url, secretFile: secretFile, orphans: orphans, timeout: timeout,
                        maxBackoff: maxBackoff, signatureV1: signatureV1))
            }
        }
        return targets
    }

    static func isHTTPURL(_ text: String) -> Bool {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme),
            let host = url.host, !host.isEmpty
        else { return false }
        return true
    }

    // MARK: - shared readers

    /// An id of letters, digits, `.`, `_`, `:` and `-`, starting with a letter or digit.
    func readIdentifier(_ node: ConfigNode, what: String) -> String? {
        guard let text = node.nonEmptyString("a \(what)") else { return nil }
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "._:-"))
        guard text.unicodeScalars.allSatisfy({ $0.isASCII && allowed.contains($0) }),
            let first = text.unicodeScalars.first, CharacterSet.alphanumerics.contains(first)
        else {
            node.error(
                "invalid \(what) '\(text)'; use letters, digits, '.', '_', ':' and '-', starting with a letter or digit"
            )
            return nil
        }
        return text
    }

    /// A file path, made absolute against the configuration file's folder.
    func resolvedPath(_ node: ConfigNode) -> String? {
        guard let text = node.nonEmptyString("a file path") else { return nil }
        if text.hasPrefix("~") {
            node.error(
                "'~' is not expanded in '\(text)'; write an absolute path or one relative to the configuration file")
            return nil
        }
        return Self.absolutePath(text, relativeTo: baseDirectory)
    }

    /// `path` made absolute against `directory`, with `.` and `..` folded away.
    static func absolutePath(_ path: String, relativeTo directory: String) -> String {
        let joined = path.hasPrefix("/") ? path : directory + "/" + path
        var parts: [Substring] = []
        for part in joined.split(separator: "/", omittingEmptySubsequences: true) {
            switch part {
            case ".": continue
            case "..": if !parts.isEmpty { parts.removeLast() }
            default: parts.append(part)
            }
        }
        return "/" + parts.joined(separator: "/")
    }
}
