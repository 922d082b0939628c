// swift-tools-version:5.4
// libFuzzer harnesses for Tether's parsers, built apart from the main package so that its
// build and CI stay untouched. scripts/fuzz builds and runs them:
//   swift build -c debug -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
//
// Tools version 5.4 on purpose: from 5.5 on, SwiftPM links an executable on Linux with its
// `main` renamed to `<module>_main`, which a harness does not have: libFuzzer provides `main`.
import PackageDescription

let package = Package(
    name: "tether-fuzz",
    platforms: [.macOS("15.0")],
    dependencies: [
        // Named, so that the product references below do not depend on the clone's folder name.
        .package(name: "tether", path: "..")
    ],
    targets: [
        // SCIM filters: parse, render and parse again, compile against User, evaluate.
        .executableTarget(
            name: "fuzz-scim-filter",
            dependencies: [.product(name: "TetherSCIM", package: "tether")]
        ),
        // PATCH paths, and PatchOp bodies applied to a User.
        .executableTarget(
            name: "fuzz-scim-path",
            dependencies: [.product(name: "TetherSCIM", package: "tether")]
        ),
        // The configuration loader on YAML text.
        .executableTarget(
            name: "fuzz-config",
            dependencies: [.product(name: "TetherConfig", package: "tether")]
        ),
        // The check question's hot-path reader, against JSONDecoder.
        .executableTarget(
            name: "fuzz-check-question",
            dependencies: [.product(name: "TetherHTTP", package: "tether")]
        ),
        // The HR webhook: the Tether-Signature header (first line) and the JSON body (the rest).
        .executableTarget(
            name: "fuzz-hr-event",
            dependencies: [.product(name: "TetherHTTP", package: "tether")]
        ),
    ]
)
