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
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(name: "StepHostPipeline", dependencies: ["StepHostLoader"]),

        // Front end.
        .executableTarget(
            name: "stephost",
            dependencies: [
                "StepHostABIText",
                "StepHostLoader",
                "StepHostPipeline",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
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
                "StepHostPipeline",
                "stephost",
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["Fixtures"]
        ),
    ]
)

for target in package.targets where target.type != .system && target.type != .binary {
    guard !["StepHostABI", "StepHostABIText", "ExampleCPlugin"].contains(target.name) else { continue }
    var settings = target.swiftSettings ?? []
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    settings.append(.enableUpcomingFeature("InternalImportsByDefault"))
    settings.append(.treatAllWarnings(as: .error))
    target.swiftSettings = settings
}
