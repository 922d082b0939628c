// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "tether",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tether", targets: ["tether"]),
        .executable(name: "tether-bench", targets: ["tether-bench"]),
        // The parsers the fuzz harnesses under Fuzz/ drive.
        .library(name: "TetherConfig", targets: ["TetherConfig"]),
        .library(name: "TetherSCIM", targets: ["TetherSCIM"]),
        .library(name: "TetherHTTP", targets: ["TetherHTTP"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        // 1.32.2 fixed a crash in LISTEN's state machine.
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
    ],
    targets: [
        // Pure domain: identities, policy, desired state, plans, audit records. No IO.
        .target(
            name: "TetherCore",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")]
        ),
        // Typed configuration and the YAML loader with located errors.
        .target(
            name: "TetherConfig",
            dependencies: ["TetherCore", "Yams"]
        ),
        // Durable state: the StateStore protocol, its SQLite backend for one machine and its
        // PostgreSQL backend for several daemons on one database.
        .target(
            name: "TetherStore",
            dependencies: [
                "TetherCore", .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                // The C API under GRDB: the decision log binds its rows without boxing them.
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The single writer of grants: lifecycle events in, plans applied and audited.
        .target(
            name: "TetherEngine",
            dependencies: ["TetherCore", "TetherStore", .product(name: "Metrics", package: "swift-metrics")]
        ),
        // OpenLDAP's libldap and liblber.
        .systemLibrary(
            name: "CLDAP",
            pkgConfig: "ldap",
            providers: [.apt(["libldap2-dev"])]
        ),
        // The commit and date a packaged build was made from (scripts/package stamps them).
        .target(name: "CBuildStamp"),
        // The LDAP directory source: connection, paged reads, syncrepl, mapping.
        .target(
            name: "TetherLDAP",
            dependencies: [
                "CLDAP", "TetherCore", "TetherConfig", "TetherEngine", "TetherStore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // SCIM 2.0 service provider: resources, filters, PATCH, discovery.
        .target(
            name: "TetherSCIM",
            dependencies: [
                "TetherCore", "TetherStore", "TetherEngine",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // HTTP surface: HR webhooks, the check API, health and metrics.
        .target(
            name: "TetherHTTP",
            dependencies: [
                "TetherCore", "TetherConfig", "TetherStore", "TetherEngine", "TetherSCIM",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Mustache", package: "swift-mustache"),
            ]
        ),
        // HTTP grant targets: the outbox deliverers and the drift check (SPEC §6).
        .target(
            name: "TetherTargets",
            dependencies: [
                "TetherCore", "TetherStore", "TetherEngine", "TetherConfig",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // Composition root: services, listeners, systemd integration.
        .target(
            name: "TetherDaemon",
            dependencies: [
                "CBuildStamp", "TetherCore", "TetherConfig", "TetherStore", "TetherEngine", "TetherLDAP", "TetherSCIM", "TetherHTTP",
                "TetherTargets",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        // Times Tether's full LDAP read and mapping (scripts/bench-ldap runs it beside ldapsearch).
        .executableTarget(
            name: "tether-bench-ldap",
            dependencies: ["TetherLDAP", "TetherConfig", "TetherCore", .product(name: "Logging", package: "swift-log")]
        ),
        .executableTarget(
            name: "tether",
            dependencies: [
                "TetherCore", "TetherConfig", "TetherStore", "TetherEngine", "TetherDaemon",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The benchmark suite of SPEC §13 (scripts/bench); built in release mode.
        .executableTarget(
            name: "tether-bench",
            dependencies: [
                "TetherCore", "TetherConfig", "TetherStore", "TetherEngine",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        .testTarget(
            name: "TetherCoreTests",
            dependencies: [
                "TetherCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        // Random and mutated inputs for the parsers' property tests.
        .target(name: "PropertyInput", path: "Tests/PropertyInput"),
        .testTarget(name: "TetherConfigTests", dependencies: ["TetherConfig", "PropertyInput"]),
        .testTarget(
            name: "TetherStoreTests",
            dependencies: ["TetherStore", "PostgresHarness", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        // A throwaway PostgreSQL cluster for tests, started once per test process.
        .target(name: "PostgresHarness", dependencies: ["SlapdHarness"], path: "Tests/PostgresHarness"),
        // A throwaway slapd for tests: the LDAP tests and the daemon tests share it.
        .target(name: "SlapdHarness", path: "Tests/SlapdHarness"),
        // The HTTP doubles of the targets tests talk to, stopped gracefully.
        .target(
            name: "ServerHarness",
            dependencies: [
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Tests/ServerHarness"
        ),
        .testTarget(
            name: "TetherLDAPTests",
            dependencies: ["TetherLDAP", "TetherEngine", "TetherStore", "TetherConfig", "SlapdHarness", "PropertyInput"]
        ),
        .testTarget(
            name: "TetherSCIMTests",
            dependencies: [
                "TetherSCIM", "TetherEngine", "TetherStore", "PropertyInput",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
        .testTarget(
            name: "TetherDaemonTests",
            dependencies: [
                "TetherStore", "TetherCore", "TetherHTTP", "TetherConfig", "TetherDaemon", "tether",
                "SlapdHarness", "PostgresHarness", "PropertyInput", "ServerHarness",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "TetherHTTPTests",
            dependencies: [
                "TetherHTTP", "TetherEngine", "TetherStore", "TetherConfig", "PropertyInput",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "TetherTargetsTests",
            dependencies: [
                "TetherTargets", "TetherCore", "TetherStore", "TetherEngine", "TetherConfig", "ServerHarness",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "TetherEngineTests",
            dependencies: [
                "TetherEngine", "TetherStore", "TetherConfig",
                .product(name: "PropertyBased", package: "swift-property-based"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
