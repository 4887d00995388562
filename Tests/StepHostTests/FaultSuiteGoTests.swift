import Foundation
import Glibc
import StepHostApplication
import StepHostCore
import StepHostEngine
import StepHostLoader
import Synchronization
import Testing

/// The Go example plugins built by scripts/build-go-plugins once per test process (a cold build takes ~10 s).
private enum BuiltGoPlugins {
    static let libraries = Mutex<[String: Data]?>(nil)
}

/// Writes libgo-quota.so and libgo-tags.so into `directory`. Fails (never skips) without Go, naming
/// scripts/bootstrap.
func buildGoPlugins(into directory: URL) throws {
    let names = ["libgo-quota.so", "libgo-tags.so"]
    let libraries = try BuiltGoPlugins.libraries.withLock { built throws -> [String: Data] in
        if let built { return built }
        let output = try TemporaryDirectory("stephost-go-plugins")
        let result = try runProcess(
            Paths.packageRoot.appendingPathComponent("scripts/build-go-plugins"),
            [output.path]
        )
        try #require(
            result.status == 0,
            "scripts/build-go-plugins failed (the Go toolchain comes from scripts/bootstrap): \(result.stderr)"
        )
        var libraries: [String: Data] = [:]
        for name in names { libraries[name] = try Data(contentsOf: output.file(name)) }
        built = libraries
        return libraries
    }
    for name in names {
        let target = directory.appendingPathComponent(name)
        try libraries[name]!.write(to: target)
        chmod(target.path, 0o755)
    }
}

/// Two Go plugins, each carrying its own Go runtime, run side by side in runners of their own: both plugins'
/// steps run and set their fields, and the operation succeeds.
@Suite("FaultSuite: Go plugins in process isolation", .timeLimit(.minutes(1)))
struct FaultSuiteGoTests {
    @Test func bothGoPluginsRunSideBySideInRunners() async throws {
        let harness = try EngineHarness()
        try buildGoPlugins(into: harness.plugins)
        let isolation = IsolationConfiguration(
            plugins: [
                "go-quota": PluginPolicyOverride(isolation: .process, deadline: .seconds(30)),
                "go-tags": PluginPolicyOverride(isolation: .process, deadline: .seconds(30)),
            ],
            initTimeout: .seconds(10)
        )
        let (operation, runs, host) = try await harness.provision(
            #"{"name":"go-runtime","region":"europe-west4","team":"platform","costCenter":"cc-42"}"#,
            isolation: isolation
        )
        #expect(host.plugins.used.map(\.name).sorted() == ["go-quota", "go-tags"])
        #expect(host.plugins.used.allSatisfy { $0.isolation == .process })
        #expect(operation.state == .succeeded, "\(operation.description)")
        #expect(operation.fields["go_quota_reservation"] != nil)
        #expect(operation.fields["go_tags"] != nil)
        let steps = Set(runs.filter { $0.outcome == .done }.map(\.step))
        #expect(steps.isSuperset(of: ["go_reserve_quota", "go_tag_runtime", "go_check_tags", "create_runtime"]))
    }
}
