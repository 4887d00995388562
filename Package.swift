// swift-tools-version:6.2

import PackageDescription

// Plugins export one symbol, stephost_plugin_init; everything else stays inside the plugin.
let pluginExportsOnlyEntryPoint: [LinkerSetting] = [
    .unsafeFlags(["-Xlinker", "--version-script=\(Context.packageDirectory)/Plugins/exports.map"])
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
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
    ],
    targets: [
        // Layer 1: the C ABI, the only contract between host and plugins.
        .target(name: "StepHostABI"),
        // The header's text, embedded at build time so `stephost plugin-header` needs no source tree.
        .target(name: "StepHostABIText"),

        // Layer 2: the Swift plugin kit, linked statically into each Swift plugin.
        .target(name: "StepHostPluginKit", dependencies: ["StepHostABI"]),

        // Layers 3 and 4: discovery, trust, dlopen, negotiation, validation; the ordered pipeline.
        .target(
            name: "StepHostLoader",
            dependencies: [
                "StepHostABI",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(name: "StepHostPipeline", dependencies: ["StepHostLoader"]),

        // Layer 6: operations persisted in SQLite (GRDB over the system libsqlite3).
        .target(
            name: "StepHostStorage",
            dependencies: [.product(name: "GRDB", package: "GRDB.swift")]
        ),

        // Layer 7: the input builder, create_runtime's request and the provisioner backends.
        .target(
            name: "StepHostRuntime",
            dependencies: [
                "StepHostLoader",
                "StepHostStorage",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // Thread naming, which Swift's Glibc module does not import.
        .target(name: "StepHostSystem"),

        // Layer 5: runs operations through the pipeline.
        .target(
            name: "StepHostEngine",
            dependencies: [
                "StepHostSystem",
                "StepHostLoader",
                "StepHostPipeline",
                "StepHostRuntime",
                "StepHostStorage",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // Front end.
        .executableTarget(
            name: "stephost",
            dependencies: [
                "StepHostABIText",
                "StepHostEngine",
                "StepHostLoader",
                "StepHostPipeline",
                "StepHostRuntime",
                "StepHostStorage",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // Throughput benchmark (scripts/bench runs it against a baseline in the same run).
        .executableTarget(
            name: "stephost-bench",
            dependencies: [
                "StepHostEngine",
                "StepHostLoader",
                "StepHostPipeline",
                "StepHostRuntime",
                "StepHostStorage",
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // Example plugins (ordinary targets with an explicit path; not SwiftPM package plugins).
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

        .testTarget(
            name: "StepHostTests",
            dependencies: [
                "StepHostABI",
                "StepHostLoader",
                "StepHostEngine",
                "StepHostPipeline",
                "StepHostRuntime",
                "StepHostStorage",
                "stephost",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["Fixtures"]
        ),
    ]
)

for target in package.targets where target.type != .system && target.type != .binary {
    guard !["StepHostABI", "StepHostABIText", "StepHostSystem", "ExampleCPlugin"].contains(target.name) else {
        continue
    }
    var settings = target.swiftSettings ?? []
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    settings.append(.enableUpcomingFeature("InternalImportsByDefault"))
    settings.append(.treatAllWarnings(as: .error))
    target.swiftSettings = settings
}
