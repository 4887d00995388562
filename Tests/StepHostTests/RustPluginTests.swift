import Foundation
import Glibc
import StepHostApplication
import StepHostCore
import StepHostEngine
import StepHostLoader
import Synchronization
import Testing

/// The Rust example plugin built by scripts/build-rust-plugins (`cargo --offline`) once per test process.
private enum BuiltRustPlugin {
    static let library = Mutex<Data?>(nil)
}

/// Writes librust-example.so into `directory`. Fails (never skips) without cargo, naming the script's fix.
func buildRustPlugin(into directory: URL) throws {
    let library = try BuiltRustPlugin.library.withLock { built throws -> Data in
        if let built { return built }
        let output = try TemporaryDirectory("stephost-rust-plugin")
        let result = try runProcess(
            Paths.packageRoot.appendingPathComponent("scripts/build-rust-plugins"),
            [output.path]
        )
        try #require(result.status == 0, "scripts/build-rust-plugins failed: \(result.stdout)\(result.stderr)")
        let data = try Data(contentsOf: output.file("librust-example.so"))
        built = data
        return data
    }
    let target = directory.appendingPathComponent("librust-example.so")
    try library.write(to: target)
    chmod(target.path, 0o755)
}

/// The Rust example plugin: its hand-written bindings match what the C compiler makes of stephost.h, it exports
/// only the entry point, and it runs in both isolation modes.
@Suite("The Rust example plugin", .timeLimit(.minutes(3)))
struct RustPluginTests {
    /// Every size, offset, constant and version helper of abi.rs against the real header (the script compiles a C
    /// program that prints them and compares).
    @Test func bindingsMatchTheHeader() throws {
        let result = try runProcess(Paths.packageRoot.appendingPathComponent("scripts/check-rust-bindings"), [])
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains("abi.rs matches stephost.h: 6 structs, 38 fields"), "\(result.stdout)")
    }

    @Test func exportsOnlyTheEntryPoint() throws {
        let directory = try TemporaryDirectory()
        try buildRustPlugin(into: directory.url)
        let symbols = try runProcess(
            URL(fileURLWithPath: "/usr/bin/env"),
            ["nm", "-D", "--defined-only", directory.file("librust-example.so").path]
        )
        #expect(
            symbols.stdout.split(separator: "\n").map { $0.split(separator: " ").last ?? "" } == [
                "stephost_plugin_init"
            ]
        )
    }

    /// check-plugin finds the Rust plugin conformant, and its export list agrees with nm's.
    @Test func checkPluginFindsItConformant() throws {
        let directory = try TemporaryDirectory()
        try buildRustPlugin(into: directory.url)
        let result = try runProcess(
            Paths.stephost,
            ["check-plugin", "--json", directory.file("librust-example.so").path]
        )
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        #expect(result.stdout.contains(#""verdict" : "conformant""#), "\(result.stdout)")
        #expect(result.stdout.contains(#""idempotent" : true"#))
    }

    @Test(arguments: [Isolation.inProcess, .process])
    func provisionsThroughTheRustStep(isolation: Isolation) async throws {
        let harness = try EngineHarness()
        try buildRustPlugin(into: harness.plugins)
        let (operation, runs, host) = try await harness.provision(
            #"{"name":"rust-runtime","region":"europe-west4","costCenter":"cc-4711"}"#,
            isolation: IsolationConfiguration(defaults: PluginPolicy(isolation: isolation))
        )
        #expect(host.plugins.used.map(\.name) == ["rust-example"])
        #expect(operation.state == .succeeded, "\(operation.description)")
        let field = try #require(operation.fields["rust_cost_center"], "\(operation.fields)")
        #expect("\(field)".contains("cc-4711"), "\(field)")
        #expect(operation.runtime.provisioningRequest?.contains("global.costCenter") == true)
        #expect(runs.map(\.step) == ["label_cost_center", "create_runtime"])
    }
}
