// swift-tools-version: 6.2
import PackageDescription

// GALLRA_WARNINGS_AS_ERRORS=1 (set by .ci/run) makes a warning in gallra's own code fail the build;
// the dependencies' warnings are not ours to fix and stay warnings.
let warningsAsErrors: [SwiftSetting] =
    Context.environment["GALLRA_WARNINGS_AS_ERRORS"] == "1" ? [.treatAllWarnings(as: .error)] : []

let swiftSettings: [SwiftSetting] =
    [
        .enableUpcomingFeature("ExistentialAny"),
        .enableUpcomingFeature("MemberImportVisibility"),
    ] + warningsAsErrors

let package = Package(
    name: "gallra",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "gallra", targets: ["gallra"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-configuration", from: "1.4.0", traits: ["YAML"]),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based", from: "2.0.1"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.20"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
    ],
    targets: [
        // System libraries, found with pkg-config (Debian: libpq-dev, libsystemd-dev).
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        // glibc's <malloc.h>.
        .systemLibrary(name: "CMalloc"),

        // What every layer shares and none owns: the civil calendar, exit statuses. Pure, no dependencies.
        .target(
            name: "GallraCore",
            swiftSettings: swiftSettings
        ),
        // libpq: connections, parameters, transactions, errors, cancellation.
        .target(
            name: "GallraPostgres",
            dependencies: [
                "CLibPQ",
                "GallraCore",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The policy language: model, YAML/JSON documents, durations, identifiers. Pure: no network, no libpq.
        .target(
            name: "GallraPolicy",
            dependencies: [
                "GallraCore",
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        // sd_notify, watchdog and the journal log handler.
        .target(
            name: "GallraSystemd",
            dependencies: [
                "CSystemd",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Planning and executing runs, the audit trail, gallra's own schema (migrations), the policy store,
        // the catalog reader.
        .target(
            name: "GallraEngine",
            dependencies: [
                "GallraCore",
                "GallraPolicy",
                "GallraPostgres",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                // Counts of what runs do, through whichever backend the process bootstraps (GallraMetrics).
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        // The Prometheus backend of the engine's metrics: the registry, the node_exporter textfile, `GET /metrics`.
        .target(
            name: "GallraMetrics",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                // The optional endpoint's HTTP/1.1 server; no Foundation, unlike most small HTTP servers.
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The long-running service: lifecycle, schedule, signals, reload, triggers, watchdog.
        .target(
            name: "GallraDaemon",
            dependencies: [
                "GallraEngine",
                "GallraMetrics",
                "GallraPolicy",
                "GallraPostgres",
                "GallraSystemd",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The command line: thin wiring of the layers below.
        .executableTarget(
            name: "gallra",
            dependencies: [
                "CMalloc",
                "GallraCore",
                "GallraDaemon",
                "GallraEngine",
                "GallraMetrics",
                "GallraPolicy",
                "GallraPostgres",
                "GallraSystemd",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                // The zip archive of a CSV extract.
                .product(name: "ZIPFoundation", package: "ZIPFoundation"),
            ],
            swiftSettings: swiftSettings,
            plugins: ["BuildInfoPlugin"]
        ),
        .plugin(name: "BuildInfoPlugin", capability: .buildTool()),

        .testTarget(
            name: "GallraPostgresTests",
            dependencies: ["GallraCore", "GallraPostgres", "GallraTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GallraPolicyTests",
            dependencies: [
                "GallraCore", "GallraPolicy", .product(name: "PropertyBased", package: "swift-property-based"),
                // The oracle of the anchor scanner's property tests.
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: swiftSettings
        ),
        // The engine against a real server: migrations, the policy store, the catalog reader.
        .testTarget(
            name: "GallraEngineTests",
            dependencies: [
                "GallraEngine", "GallraPostgres", "GallraPolicy", "GallraTestSupport",
                .product(name: "Logging", package: "swift-log"),
                // Generated schemas and policies: the validator and the engine agree on every shape.
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: swiftSettings
        ),
        // The daemon's pure parts: the scheduler.
        .testTarget(
            name: "GallraDaemonTests",
            dependencies: ["GallraDaemon", "GallraPolicy"],
            swiftSettings: swiftSettings
        ),
        // Test helpers shared by test targets (a unix-datagram NOTIFY_SOCKET recorder).
        .target(
            name: "GallraTestSupport",
            dependencies: ["GallraPostgres", .product(name: "Logging", package: "swift-log")],
            path: "Tests/GallraTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GallraSystemdTests",
            dependencies: ["GallraSystemd", "GallraTestSupport"],
            swiftSettings: swiftSettings
        ),
        // End-to-end tests of the built `gallra` binary against the test server. The engine is there to set up
        // data the binary reads (an audit trail), never to stand in for the binary.
        .testTarget(
            name: "GallraCLITests",
            dependencies: ["gallra", "GallraEngine", "GallraPostgres", "GallraTestSupport"],
            swiftSettings: swiftSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
