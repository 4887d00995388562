import Foundation
import GRDB
import Logging
import StepHostEngine
import StepHostLoader
import StepHostPipeline
import StepHostRuntime
import StepHostStorage
import Testing

/// A plugin directory, a real SQLite file and an engine with the local provisioner.
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

    func store() throws -> SQLiteOperationStore {
        try SQLiteOperationStore(path: databasePath)
    }

    func engine(_ options: EngineOptions = EngineOptions(), store: SQLiteOperationStore) throws -> Engine {
        let catalog = try loadCatalog(path: plugins.path)
        try #require(catalog.broken.isEmpty, "\(catalog.broken)")
        return Engine(
            pipeline: Pipeline(plugins: catalog.plugins),
            store: store,
            provisioner: LocalProvisioner(store: store),
            options: options,
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        )
    }

    /// Creates an operation and runs it to a final state.
    func provision(
        _ parameters: String = #"{"name":"test-runtime"}"#,
        options: EngineOptions = EngineOptions()
    ) async throws -> (OperationRecord, [StepRun], SQLiteOperationStore) {
        let store = try store()
        let engine = try engine(options, store: store)
        let created = try await engine.createOperation(parameters: parameters, instanceID: "inst-1")
        try await engine.runUntilIdle(only: created.id)
        let operation = try #require(try await store.operation(id: created.id))
        return (operation, try await store.stepRuns(operationID: created.id), store)
    }
}
