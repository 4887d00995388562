// swift-tools-version:6.2

import PackageDescription

// Plugins export one symbol, stephost_plugin_init; everything else stays inside the plugin.
let pluginExportsOnlyEntryPoint: [LinkerSetting] = [
    .unsafeFlags(["-Xlinker", "--version-script=\(Context.packageDirectory)/Plugins/exports.map"])
]

// Every dependency of the host is behind the trait "Host", on by default. A plugin's package turns it off
// (`.package(url: …, from: …, traits: [])`) and then resolves none of them: the kit and the ABI need nothing but
// the Swift toolchain.
func host(_ name: String, _ package: String) -> Target.Dependency {
    .product(name: name, package: package, condition: .when(traits: ["Host"]))
}

let logging = host("Logging", "swift-log")

// The host's layers, bottom up (DESIGN.md): each module depends only on modules listed before it.
let hostTargets: [Target] = [
    // Core: the operation, steps and their results, overrides, the step protocol. Foundation only.
    .target(name: "StepHostCore"),

    // The C ABI, the only contract between host and plugins.
    .target(name: "StepHostABI"),
    // The header's text, embedded at build time so `stephost plugin-header` needs no source tree.
    .target(name: "StepHostABIText"),
    // The Rust example plugin's sources, embedded at build time for `stephost new-plugin --language rust`.
    .target(name: "StepHostTemplates"),
    // Thread naming, which Swift's Glibc module does not import.
    .target(name: "StepHostSystem"),

    // The Swift plugin kit, linked statically into each Swift plugin.
    .target(name: "StepHostPluginKit", dependencies: ["StepHostABI"]),

    // Loading: discovery, trust, dlopen, negotiation, validation; plugin steps run in process.
    .target(
        name: "StepHostLoader",
        dependencies: [
            "StepHostCore", "StepHostABI", "StepHostSystem", host("Crypto", "swift-crypto"),
            logging, host("Metrics", "swift-metrics"),
        ]
    ),

    // The ordered pipeline of steps.
    .target(name: "StepHostPipeline", dependencies: ["StepHostCore"]),

    // Storage: the protocols for operations and claims, and for the local provisioner's records.
    .target(name: "StepHostStorage", dependencies: ["StepHostCore"]),
    // The embedded store: SQLite through GRDB over the system libsqlite3.
    .target(
        name: "StepHostSQLite",
        dependencies: [
            "StepHostCore", "StepHostStorage", "StepHostSystem", host("GRDB", "GRDB.swift"),
            host("Metrics", "swift-metrics"),
        ]
    ),

    // The store for several hosts sharing the work: PostgreSQL through postgres-nio (--database-url).
    .target(
        name: "StepHostPostgres",
        dependencies: ["StepHostCore", "StepHostStorage", host("PostgresNIO", "postgres-nio"), logging]
    ),

    // Runtime: create_runtime, its provisioning request and the provisioner backends.
    .target(name: "StepHostRuntime", dependencies: ["StepHostCore", "StepHostABI", "StepHostStorage"]),

    // Engine: runs operations through the pipeline; knows steps and stores only by their protocols.
    .target(name: "StepHostEngine", dependencies: ["StepHostCore", "StepHostPipeline", "StepHostStorage", logging]),

    // Host assembly: configuration -> plugins -> policy -> pipeline -> store -> backend -> engine.
    .target(
        name: "StepHostApplication",
        dependencies: [
            "StepHostCore", "StepHostLoader", "StepHostPipeline", "StepHostStorage", "StepHostSQLite",
            "StepHostPostgres", "StepHostRuntime", "StepHostEngine", logging, host("Yams", "Yams"),
        ]
    ),

    // The service: the Open Service Broker API, /metrics and the status page over Hummingbird, run with the engine
    // by swift-service-lifecycle.
    .target(
        name: "StepHostServer",
        dependencies: [
            "StepHostApplication", "StepHostCore", "StepHostEngine", "StepHostLoader", "StepHostSQLite",
            "StepHostStorage", logging,
            host("Hummingbird", "hummingbird"),
            host("ServiceLifecycle", "swift-service-lifecycle"),
            host("UnixSignals", "swift-service-lifecycle"),
            host("Metrics", "swift-metrics"),
            host("Prometheus", "swift-prometheus"),
            host("Mustache", "swift-mustache"),
            host("Crypto", "swift-crypto"),
            host("HTTPTypes", "swift-http-types"),
        ]
    ),

    // Front ends: the CLI, and the throughput benchmark (scripts/bench runs it against a baseline).
    .executableTarget(
        name: "stephost",
        dependencies: [
            "StepHostABIText", "StepHostTemplates", "StepHostApplication", "StepHostCore", "StepHostEngine",
            "StepHostLoader", "StepHostServer", "StepHostSQLite", "StepHostStorage", "StepHostSystem",
            host("UnixSignals", "swift-service-lifecycle"),
            host("ArgumentParser", "swift-argument-parser"),
            logging,
        ]
    ),
    .executableTarget(
        name: "stephost-bench",
        dependencies: [
            "StepHostApplication", "StepHostCore", "StepHostEngine", "StepHostLoader", "StepHostPipeline",
            "StepHostSQLite", "StepHostStorage", "StepHostPostgres", logging,
        ]
    ),
]

// Example plugins (ordinary targets with an explicit path; not SwiftPM package plugins).
let pluginTargets: [Target] = [
    .target(
        name: "ExampleNetworkPlugin",
        dependencies: ["StepHostABI", "StepHostPluginKit"],
        path: "Plugins/ExampleNetworkPlugin",
        linkerSettings: pluginExportsOnlyEntryPoint
    ),
    .target(
        name: "ExampleAuditPlugin",
        dependencies: ["StepHostABI", "StepHostPluginKit"],
        path: "Plugins/ExampleAuditPlugin",
        linkerSettings: pluginExportsOnlyEntryPoint
    ),
    .target(
        name: "ExampleCPlugin",
        dependencies: ["StepHostABI"],
        path: "Plugins/ExampleCPlugin",
        linkerSettings: pluginExportsOnlyEntryPoint
    ),
]

let testTargets: [Target] = [
    .testTarget(
        name: "StepHostTests",
        dependencies: [
            "StepHostABI", "StepHostApplication", "StepHostCore", "StepHostLoader", "StepHostEngine",
            "StepHostPipeline", "StepHostRuntime", "StepHostSQLite", "StepHostStorage", "StepHostPostgres", "stephost",
            host("GRDB", "GRDB.swift"), logging,
            // The configuration merge is tested on parsed commands.
            host("ArgumentParser", "swift-argument-parser"),
        ],
        exclude: ["Fixtures"]
    )
]

let package = Package(
    name: "stephost",
    products: [
        .executable(name: "stephost", targets: ["stephost"]),
        // The plugin ABI and the Swift plugin kit, for teams that build their plugins in their own package.
        .library(name: "StepHostABI", targets: ["StepHostABI"]),
        .library(name: "StepHostPluginKit", targets: ["StepHostPluginKit"]),
        // Example plugins: each is a shared object the host loads from its plugin directory.
        .library(name: "ExampleNetworkPlugin", type: .dynamic, targets: ["ExampleNetworkPlugin"]),
        .library(name: "ExampleAuditPlugin", type: .dynamic, targets: ["ExampleAuditPlugin"]),
        .library(name: "ExampleCPlugin", type: .dynamic, targets: ["ExampleCPlugin"]),
    ],
    traits: [
        .trait(name: "Host", description: "Build the host (stephost) and its tests; a plugin needs only the kit."),
        .default(enabledTraits: ["Host"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        // The host configuration file (stephost.yaml): YAML parsed to nodes with their line numbers.
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        // The service (`stephost serve`): HTTP, lifecycle and graceful shutdown, metrics, the status page.
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        // The PostgreSQL store, for several hosts on one database.
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
    ],
    targets: hostTargets + pluginTargets + testTargets
)

for target in package.targets where target.type != .system && target.type != .binary {
    let cTargets = ["StepHostABI", "StepHostABIText", "StepHostTemplates", "StepHostSystem", "ExampleCPlugin"]
    guard !cTargets.contains(target.name) else { continue }
    var settings = target.swiftSettings ?? []
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    settings.append(.enableUpcomingFeature("InternalImportsByDefault"))
    settings.append(.treatAllWarnings(as: .error))
    target.swiftSettings = settings
}
