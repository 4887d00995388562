import Foundation
import Glibc
import Logging
import StepHostApplication
import StepHostCore
import StepHostEngine
import StepHostLoader
import StepHostSQLite
import StepHostStorage
import Testing

/// Load-time faults: a constructor that crashes or calls exit(0), an init that crashes, aborts or hangs. The
/// scanner child takes the fault, the plugin is reported broken with the reason, the host fails closed while it
/// is there, and starts for the remaining plugins once it is disabled.
@Suite("FaultSuite: load-time faults", .timeLimit(.minutes(1)))
struct FaultSuiteLoadTests {
    static let loadFaults: [LoadFault] = [
        .constructorCrashes, .constructorExitsZero, .initCrashes, .initAborts, .initHangs,
    ]

    /// The code and message the scanner gives `fault` (init timeout 2 s).
    static func expected(_ fault: LoadFault) -> (code: PluginLoadError.Code, message: String) {
        let crashed = "loading it in the scanner crashed with signal "
        let during = " (in a constructor or in stephost_plugin_init)"
        switch fault {
        case .constructorCrashes, .initCrashes:
            return (.loadCrashed, crashed + "11 (SIGSEGV, Segmentation fault)" + during)
        case .initAborts: return (.loadCrashed, crashed + "6 (SIGABRT, Aborted)" + during)
        case .constructorExitsZero: return (.loadExited, "loading it in the scanner exited with status 0" + during)
        case .initHangs:
            return (
                .loadHung,
                "loading it did not finish within 2 s (a constructor or stephost_plugin_init does not return or stalls it); the "
                    + "scanner was stopped with signal 9 (SIGKILL, Killed)"
            )
        }
    }

    /// A plugin directory with the faulty plugin and a healthy one ("healthy", mode 0).
    static func directory(with fault: LoadFault) throws -> EngineHarness {
        let harness = try EngineHarness()
        try compileLoadFaultFixture(harness.plugins.appendingPathComponent("faulty.so"), fault, name: "faulty")
        try harness.addFixture("healthy", mode: 0, weight: 20)
        return harness
    }

    static func configuration(_ harness: EngineHarness, disabled: Set<String> = []) -> HostConfiguration {
        HostConfiguration(
            pluginsDirectory: harness.plugins.path,
            disabledPlugins: disabled,
            databasePath: harness.databasePath,
            isolation: IsolationConfiguration(initTimeout: .seconds(2)),
            childExecutable: Paths.stephost.path,
            scanCache: false
        )
    }

    static let logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

    /// Through the host: building it fails closed naming the plugin and the reason, and writes no database;
    /// with the plugin disabled by file name (never opened) it starts and runs the healthy plugin's step.
    @Test(arguments: loadFaults)
    func aPluginThatFaultsWhileLoadingIsBrokenAndCanBeDisabled(_ fault: LoadFault) async throws {
        let harness = try Self.directory(with: fault)
        do {
            _ = try await ProvisioningHost(Self.configuration(harness), logger: Self.logger)
            Issue.record("the host started with a broken plugin")
        } catch .brokenPlugins(let broken) {
            let (code, message) = Self.expected(fault)
            #expect(broken.count == 1)
            #expect(broken.first?.file == harness.plugins.appendingPathComponent("faulty.so").path)
            #expect(broken.first?.error.code == code)
            #expect(broken.first?.error.message == message)
        } catch {
            Issue.record("unexpected \(error)")
        }
        #expect(!FileManager.default.fileExists(atPath: harness.databasePath))

        let host = try await ProvisioningHost(Self.configuration(harness, disabled: ["faulty.so"]), logger: Self.logger)
        #expect(host.plugins.used.map(\.name) == ["healthy"])
        let created = try await host.engine.createOperation(
            parameters: try ProvisioningParameters(json: #"{"name":"x"}"#)
        )
        let operation = try await host.engine.runToCompletion(operationID: created.id)
        #expect(operation.state == .succeeded, "\(operation.description)")
        #expect(operation.fields["last_fixture_step"] != nil)
    }

    /// Through the real binary: `stephost provision` refuses with exit 3 naming the reason, without crashing or
    /// hanging; `--disable-plugin faulty.so` lets it run the rest. (The hang is left out here: the command line
    /// cannot shorten the 10 s init timeout yet; list-plugins shows it in FaultFixtureTests.)
    @Test(arguments: [LoadFault.constructorCrashes, .constructorExitsZero, .initCrashes])
    func provisionRefusesABrokenPluginAndRunsWithoutIt(_ fault: LoadFault) throws {
        let harness = try Self.directory(with: fault)
        let environment = [
            "STEPHOST_PLUGINS_DIR": harness.plugins.path,
            "STEPHOST_SCAN_CACHE": harness.directory.file("scan-cache.json").path,
        ]
        let refused = try runProcess(
            Paths.stephost,
            ["provision", "--parameters", #"{"name":"x"}"#, "--db", harness.databasePath],
            environment: environment,
            timeout: 30
        )
        #expect(!refused.timedOut && !refused.signaled && refused.status == 3, "\(refused.status) \(refused.stderr)")
        #expect(refused.stderr.contains("refusing to run operations while plugins are broken"))
        let message = Self.expected(fault).message
        #expect(refused.stderr.contains("faulty.so: [\(Self.expected(fault).code)] \(message)"), "\(refused.stderr)")
        #expect(refused.stdout.isEmpty)

        let list = try runProcess(
            Paths.stephost,
            ["list-plugins", "--json"],
            environment: environment,
            timeout: 30
        )
        #expect(list.status == 1)
        #expect(list.stdout.contains(#""check" : "\#(Self.expected(fault).code)""#), "\(list.stdout)")

        let ran = try runProcess(
            Paths.stephost,
            [
                "provision", "--parameters", #"{"name":"x"}"#, "--db", harness.databasePath, "--disable-plugin",
                "faulty.so",
            ],
            environment: environment,
            timeout: 30
        )
        #expect(ran.status == 0, "\(ran.stdout)\(ran.stderr)")
        #expect(ran.stdout.contains("healthy_step"))
        #expect(ran.stdout.contains("succeeded: runtime "))
    }
}

/// An in-process plugin that crashes the host (mode 28, through the real binary), then a host configured to
/// refuse quarantined plugins: the next pass quarantines the plugin and fails its operation at once, naming the
/// quarantine, never running the plugin in this process; a host built after that refuses to start (fail closed).
@Suite("FaultSuite: in-process crash and quarantine", .timeLimit(.minutes(1)))
struct FaultSuiteQuarantineTests {
    @Test func aHostCrashQuarantinesThePluginAndRefuseFailsItsOperation() async throws {
        let harness = try EngineHarness()
        try harness.addFixture("crasher", mode: 28, weight: 20)
        let first = try runProcess(
            Paths.stephost,
            ["provision", "--parameters", #"{"name":"crash"}"#, "--db", harness.databasePath],
            environment: [
                "STEPHOST_PLUGINS_DIR": harness.plugins.path,
                "STEPHOST_SCAN_CACHE": harness.directory.file("scan-cache.json").path,
            ],
            timeout: 30
        )
        #expect(!first.timedOut)
        #expect(first.status == 128 + SIGSEGV || first.status == SIGSEGV, "\(first.status): \(first.stderr)")

        let refuse = IsolationConfiguration(quarantine: .refuse, initTimeout: .seconds(2))
        let host = try await harness.host(isolation: refuse)
        let report = try await host.engine.runUntilIdle()
        #expect(report.operations.count == 1)
        let id = try #require(report.operations.first?.id)
        let failed = try #require(try await host.store.operation(id: id))
        #expect(failed.state == .failed)
        #expect(failed.lastError?.step == "crasher_step")
        #expect(
            failed.lastError?.message
                == "plugin crasher is quarantined (the host died while running its step crasher_step in process "
                + "(pass 1)) and the configuration refuses quarantined plugins; deploy a fixed build or run "
                + "`stephost plugins clear-quarantine crasher`",
            "\(failed.lastError?.message ?? "")"
        )
        #expect(host.quarantine.entry(for: "crasher", fileHash: host.plugins.used[0].fileHash) != nil)

        do {
            _ = try await harness.host(isolation: refuse)
            Issue.record("a host that refuses quarantined plugins started with one")
        } catch HostError.brokenPlugins(let broken) {
            #expect(broken.map(\.error.code) == [.quarantined])
            #expect(broken.first?.error.message.hasPrefix("it is quarantined: the host died while running") == true)
        }
    }
}
