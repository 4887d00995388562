import Foundation
import Logging
import StepHostEngine
import StepHostLoader
import StepHostPipeline
import StepHostRuntime
import StepHostStorage

/// Measures operations per second through the real engine, real plugins and a real SQLite file, against a
/// baseline measured in the same run: the same engine with only the built-in create_runtime step.
///
/// Usage: stephost-bench PLUGINS_DIR [OPERATIONS] [WORKERS]
@main
struct StepHostBench {
    static func main() async throws {
        let arguments = CommandLine.arguments
        guard arguments.count >= 2 else {
            FileHandle.standardError.write(Data("usage: stephost-bench PLUGINS_DIR [OPERATIONS] [WORKERS]\n".utf8))
            exit(64)
        }
        let count = arguments.count > 2 ? Int(arguments[2]) ?? 300 : 300
        let workers = arguments.count > 3 ? Int(arguments[3]) ?? 4 : 4
        let logger = Logger(label: "bench", factory: { _ in SwiftLogNoOpLogHandler() })
        let catalog = try PluginLoader(logger: logger).load(directory: arguments[1])
        guard catalog.broken.isEmpty else {
            FileHandle.standardError.write(Data("bench: broken plugins in \(arguments[1])\n".utf8))
            exit(1)
        }
        let baseline = try await measure(Pipeline(plugins: []), count: count, workers: workers, logger: logger)
        let measured = try await measure(
            Pipeline(plugins: catalog.plugins),
            count: count,
            workers: workers,
            logger: logger
        )
        let steps = Pipeline(plugins: catalog.plugins).steps.count
        print("operations: \(count), workers: \(workers), SQLite synchronous=FULL")
        print(
            String(
                format: "baseline  create_runtime only            %8.1f operations/s  (%.0f passes)",
                baseline.rate,
                baseline.passes
            )
        )
        print(
            String(
                format: "measured  %d plugins, %d steps            %8.1f operations/s  (%.0f passes, %.0f step runs/s)",
                catalog.plugins.count,
                steps,
                measured.rate,
                measured.passes,
                measured.stepRuns / measured.seconds
            )
        )
        print(String(format: "ratio: %.2fx the baseline's throughput", measured.rate / baseline.rate))
    }

    struct Result {
        var rate: Double
        var passes: Double
        var stepRuns: Double
        var seconds: Double
    }

    static func measure(_ pipeline: Pipeline, count: Int, workers: Int, logger: Logger) async throws -> Result {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("stephost-bench-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try SQLiteOperationStore(path: directory.appendingPathComponent("bench.sqlite").path)
        var options = EngineOptions()
        options.workers = workers
        let engine = Engine(
            pipeline: pipeline,
            store: store,
            provisioner: LocalProvisioner(store: store),
            options: options,
            logger: logger
        )
        let start = ContinuousClock.now
        for index in 0..<count {
            _ = try await engine.createOperation(
                parameters: #"{"name":"bench-\#(index)"}"#,
                instanceID: "bench-\(index)"
            )
        }
        try await engine.runUntilIdle()
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let operations = try await store.operations(state: nil)
        guard operations.allSatisfy({ $0.state == .succeeded }) else {
            throw CocoaError(
                .featureUnsupported,
                userInfo: [NSDebugDescriptionErrorKey: "an operation did not succeed"]
            )
        }
        var stepRuns = 0
        for operation in operations { stepRuns += try await store.stepRuns(operationID: operation.id).count }
        return Result(
            rate: Double(count) / seconds,
            passes: Double(operations.map(\.attempt).reduce(0, +)),
            stepRuns: Double(stepRuns),
            seconds: seconds
        )
    }
}
