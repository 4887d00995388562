import Foundation
import Glibc
import StepHostLoader
import Testing

/// The isolation fault suite's fixture plugins build and load. Their faulty steps never run here: in the test
/// process they would take the test runner down. The load-time faults are shown in a child process, the real
/// `stephost list-plugins`, where they take down, end or wedge today's host.
@Suite("Fault fixtures")
struct FaultFixtureTests {
    @Test func everyRunModeFixtureBuildsAndLoads() throws {
        let directory = try TemporaryDirectory()
        for mode in FaultMode.allCases {
            try compileFaultFixture(
                directory.file("mode\(mode.rawValue).so"),
                mode: mode,
                name: "mode\(mode.rawValue)",
                weight: mode.rawValue
            )
        }

        let catalog = try loadCatalog(directory)

        #expect(catalog.broken.isEmpty, "\(catalog.broken)")
        #expect(catalog.plugins.map(\.name).sorted() == FaultMode.allCases.map { "mode\($0.rawValue)" }.sorted())
        for plugin in catalog.plugins {
            let mode = try #require(Int(plugin.name.dropFirst("mode".count)))
            #expect(plugin.steps.map(\.name) == ["\(plugin.name)_step"])
            #expect(plugin.steps.map(\.weight) == [mode])
        }
        // Mode 39 reads is_cancelled only where the host's table holds it, and chooses 1.0 to load on a 1.0 host.
        let polling = try #require(catalog.plugins.first { $0.name == "mode39" })
        #expect(polling.abiVersion == ABIVersion(major: 1, minor: 0))
    }

    @Test func cxxFixtureBuildsAndLoads() throws {
        let directory = try TemporaryDirectory()
        try compileCxxFixture(directory.file("thrower.so"), name: "thrower", weight: 20)

        let catalog = try loadCatalog(directory)

        #expect(catalog.broken.isEmpty, "\(catalog.broken)")
        let plugin = try #require(catalog.plugins.first)
        #expect(plugin.name == "thrower")
        #expect(plugin.steps.map(\.name) == ["thrower_step"])
        #expect(plugin.steps.map(\.weight) == [20])
    }

    /// The crate is built under two names: the name, the step and the weight come from the build's environment.
    @Test func rustFixtureBuildsUnderAnyNameAndLoads() throws {
        let directory = try TemporaryDirectory()
        try buildRustFixture(directory.file("rust_panic.so"))
        try buildRustFixture(directory.file("rusty.so"), name: "rusty", step: "rusty_panics", weight: 120)

        let catalog = try loadCatalog(directory)

        #expect(catalog.broken.isEmpty, "\(catalog.broken)")
        let plugins = catalog.plugins.sorted { $0.name < $1.name }
        #expect(plugins.map(\.name) == ["rust_panic", "rusty"])
        #expect(plugins.map { $0.steps.map(\.name) } == [["rust_panic_step"], ["rusty_panics"]])
        #expect(plugins.map { $0.steps.map(\.weight) } == [[10], [120]])
        #expect(plugins.allSatisfy { $0.abiVersion == ABIVersion(major: 1, minor: 0) })
    }

    @Test func swiftTrapFixtureBuildsAndLoads() throws {
        let directory = try TemporaryDirectory()
        try compileSwiftTrapFixture(directory.file("trapper.so"), name: "trapper", weight: 30)

        let catalog = try loadCatalog(directory)

        #expect(catalog.broken.isEmpty, "\(catalog.broken)")
        let plugin = try #require(catalog.plugins.first)
        #expect(plugin.name == "trapper")
        #expect(plugin.steps.map(\.name) == ["trapper_step"])
        #expect(plugin.steps.map(\.weight) == [30])
    }

    // The load-time faults through the real binary: the scanner child loads the plugin first, so a constructor or
    // an init that crashes, exits or hangs only ends the scanner, and the plugin is reported broken with the reason.

    /// `stephost list-plugins` on a directory holding only a plugin with `fault`, given `seconds`, with a scan
    /// cache of its own (the scanner really runs).
    private func listPlugins(with fault: LoadFault, seconds: Double = 30) throws -> BoundedProcessResult {
        let directory = try TemporaryDirectory()
        let plugins = directory.file("plugins")
        try FileManager.default.createDirectory(at: plugins, withIntermediateDirectories: false)
        chmod(plugins.path, 0o755)
        try compileLoadFaultFixture(plugins.appendingPathComponent("faulty.so"), fault, name: "faulty")
        return try runProcess(
            Paths.stephost,
            ["list-plugins", "--plugins-dir", plugins.path],
            environment: ["STEPHOST_SCAN_CACHE": directory.file("scan-cache.json").path],
            timeout: seconds
        )
    }

    /// The broken plugin's entry in the report: the file, then the code and the message.
    private func expectReportedBroken(
        _ result: BoundedProcessResult,
        code: String,
        message: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(!result.timedOut, sourceLocation: sourceLocation)
        #expect(
            !result.signaled && result.status == 1,
            "status \(result.status): \(result.stderr)",
            sourceLocation: sourceLocation
        )
        #expect(
            result.stdout.contains("Broken plugins (1); none of their steps are used:"),
            sourceLocation: sourceLocation
        )
        #expect(
            result.stdout.contains("/faulty.so\n    [\(code)] \(message)"),
            "\(result.stdout)",
            sourceLocation: sourceLocation
        )
    }

    // Flipped now that the scanner landed: the scanner child takes the crash and the host reports the plugin broken.
    @Test func constructorThatCrashesIsReportedBroken() throws {
        expectReportedBroken(
            try listPlugins(with: .constructorCrashes),
            code: "load-crashed",
            message: "loading it in the scanner crashed with signal 11 (SIGSEGV, Segmentation fault) (in a constructor "
                + "or in stephost_plugin_init)"
        )
    }

    // Flipped: the scanner child's exit before it answers is a broken plugin, not success.
    @Test func constructorThatExitsZeroIsReportedBroken() throws {
        expectReportedBroken(
            try listPlugins(with: .constructorExitsZero),
            code: "load-exited",
            message: "loading it in the scanner exited with status 0 (in a constructor or in stephost_plugin_init)"
        )
    }

    // Flipped: the scanner child is killed at the init timeout (10 s: the command line cannot set it yet) and the
    // plugin reported broken.
    @Test func initThatHangsIsReportedBrokenAtTheInitTimeout() throws {
        let result = try listPlugins(with: .initHangs, seconds: 30)
        expectReportedBroken(
            result,
            code: "load-hung",
            message:
                "loading it did not finish within 10 s (a constructor or stephost_plugin_init does not return or stalls it); "
                + "the scanner was stopped with signal 9 (SIGKILL, Killed)"
        )
    }

    // Flipped: the scanner child takes the crash and the host reports the plugin broken.
    @Test func initThatCrashesIsReportedBroken() throws {
        expectReportedBroken(
            try listPlugins(with: .initCrashes),
            code: "load-crashed",
            message: "loading it in the scanner crashed with signal 11 (SIGSEGV, Segmentation fault) (in a constructor "
                + "or in stephost_plugin_init)"
        )
    }
}
