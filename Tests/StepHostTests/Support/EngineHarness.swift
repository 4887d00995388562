import Foundation
import GRDB
import Logging
import StepHostApplication
import StepHostCore
import StepHostEngine
import StepHostLoader
import StepHostSQLite
import StepHostStorage
import Testing

/// A plugin directory, a real SQLite file and a host built by `ProvisioningHost` with the local provisioner:
/// the end-to-end layer of the engine tests, with real plugins.
final class EngineHarness {
    let directory: TemporaryDirectory
    let plugins: URL
    let databasePath: String

    init() throws {
        directory = try TemporaryDirectory("stephost-engine")
        plugins = directory.file("plugins")
        try FileManager.default.createDirectory(at: plugins, withIntermediateDirectories: false)
        chmod(plugins.path, 0o755)
        databasePath = directory.file("stephost.sqlite").path
    }

    /// Copies the example plugins into the plugin directory.
    func addExamples() throws {
        for product in Paths.examplePlugins {
            let source = try Paths.examplePlugin(product)
            let target = plugins.appendingPathComponent(source.lastPathComponent)
            try FileManager.default.copyItem(at: source, to: target)
            chmod(target.path, 0o755)
        }
    }

    /// Compiles a fixture plugin into the plugin directory.
    func addFixture(_ name: String, mode: Int, weight: Int) throws {
        try compileFixture(
            plugins.appendingPathComponent("\(name).so"),
            [
                "PLUGIN_NAME": cString(name), "STEP1_NAME": cString("\(name)_step"), "STEP1_WEIGHT": "\(weight)",
                "RUN_MODE": "\(mode)",
            ]
        )
    }

    /// Builds the host for the plugin directory and the database.
    func host(
        _ options: EngineOptions = EngineOptions(),
        isolation: IsolationConfiguration = IsolationConfiguration(),
        logger: Logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
    ) async throws -> ProvisioningHost {
        try await ProvisioningHost(
            HostConfiguration(
                pluginsDirectory: plugins.path,
                databasePath: databasePath,
                engine: options,
                isolation: isolation,
                childExecutable: Paths.stephost.path
            ),
            logger: logger
        )
    }

    /// Creates an operation and runs it to a final state.
    func provision(
        _ parameters: String = #"{"name":"test-runtime"}"#,
        options: EngineOptions = EngineOptions(),
        isolation: IsolationConfiguration = IsolationConfiguration()
    ) async throws -> (OperationRecord, [StepRun], ProvisioningHost) {
        let host = try await host(options, isolation: isolation)
        let created = try await host.engine.createOperation(
            parameters: try ProvisioningParameters(json: parameters),
            instanceID: "inst-1"
        )
        let operation = try await host.engine.runToCompletion(operationID: created.id)
        return (operation, try await host.store.stepRuns(operationID: created.id), host)
    }
}
