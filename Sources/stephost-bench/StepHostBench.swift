import Foundation
import Logging
import StepHostApplication
import StepHostCore
import StepHostEngine
import StepHostPipeline
import StepHostSQLite

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
        // The baseline's plugin directory is empty: its pipeline is create_runtime alone.
        let empty = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: empty) }
        let baseline = try await measure(plugins: empty.path, count: count, workers: workers, logger: logger)
        let measured = try await measure(plugins: arguments[1], count: count, workers: workers, logger: logger)
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
                measured.plugins,
                measured.steps,
                measured.rate,
                measured.passes,
                measured.stepRuns / measured.seconds
            )
        )
        print(String(format: "ratio: %.2fx the baseline's throughput", measured.rate / baseline.rate))
    }

    struct Result {
        var plugins: Int
        var steps: Int
        var rate: Double
        var passes: Double
        var stepRuns: Double
        var seconds: Double
    }

    static func temporaryDirectory() throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("stephost-bench-\(UUID())")
        try FileManager.default.createDirectory(
            at: directory,
            withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o755]
        )
        return directory
    }

    static func measure(plugins: String, count: Int, workers: Int, logger: Logger) async throws -> Result {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var options = EngineOptions()
        options.workers = workers
        let host: ProvisioningHost
        do {
            host = try ProvisioningHost(
                HostConfiguration(
                    pluginsDirectory: plugins,
                    databasePath: directory.appendingPathComponent("bench.sqlite").path,
                    engine: options
                ),
                logger: logger
            )
        } catch {
            FileHandle.standardError.write(Data("bench: the host cannot be built from \(plugins): \(error)\n".utf8))
            exit(1)
        }
        let start = ContinuousClock.now
        for index in 0..<count {
            _ = try await host.engine.createOperation(
                parameters: try ProvisioningParameters(json: #"{"name":"bench-\#(index)"}"#),
                instanceID: "bench-\(index)"
            )
        }
        let report = try await host.engine.runUntilIdle()
        let elapsed = ContinuousClock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        guard report.operations.count == count, report.operations.allSatisfy({ $0.state == .succeeded }) else {
            throw CocoaError(
                .featureUnsupported,
                userInfo: [NSDebugDescriptionErrorKey: "an operation did not succeed"]
            )
        }
        var stepRuns = 0
        for operation in report.operations {
            stepRuns += try await host.store.stepRuns(operationID: operation.id).count
        }
        return Result(
            plugins: host.plugins.used.count,
            steps: host.pipeline.steps.count,
            rate: Double(count) / seconds,
            passes: Double(report.passes),
            stepRuns: Double(stepRuns),
            seconds: seconds
        )
    }
}
