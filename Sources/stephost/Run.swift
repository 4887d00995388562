import ArgumentParser
import Foundation
import Logging
import StepHostApplication
import StepHostCore
import StepHostEngine
import StepHostServer
import StepHostStorage
import UnixSignals

/// `stephost run`: processes every unfinished operation in the database until none is left.
struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Process every unfinished operation in the database until none is left.",
        discussion: """
            Finishes detached operations and those a stopped or killed host left behind: each is resumed \
            from its first step when due, with every persisted field kept; create_runtime sends its request \
            at most once: an attempt recorded without an answer fails the operation (see \
            --provisioner-idempotent). Parked operations are picked up when their retry is due. SIGTERM or SIGINT \
            stops it gracefully: nothing new starts, running steps get --shutdown-grace seconds to finish, and their \
            operations are left due for the next run (a second signal stops at once). Exit status: 0 when every \
            operation processed succeeded (or was left for the next run by a stop), 1 when any failed.
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var engine: EngineOptionsGroup
    @OptionGroup var config: ConfigFileOptions

    @Flag(help: "Print one JSON object per line per event (pass_started, step_finished, parked, finished, summary).")
    var json = false

    @Flag(help: "Run one pass of each operation due now and exit; parked operations stay parked (for cron).")
    var once = false

    func run() async throws {
        let file = try config.load()
        let host = try await engine.makeHost(global, database, file, access: .existing, showOperation: true, json: json)
        let report: RunReport
        let stop = GracefulStop(
            engine: host.engine,
            grace: engine.shutdownGrace(file),
            logger: Logger(label: "stephost"),
            exit: {
                fflush(nil)
                _exit(0)
            }
        )
        let signals = Task {
            for await signal in await UnixSignalsSequence(trapping: .sigterm, .sigint) { stop.signalled("\(signal)") }
        }
        defer { signals.cancel() }
        do {
            defer { stop.finished() }
            report = once ? try await host.engine.runDue() : try await host.engine.runUntilIdle()
        } catch let error as StorageError {
            throw fail(error)
        } catch let error as EngineStopped {
            printError("stephost: \(error)")
            throw ExitStatus.hostStopped
        }
        let operations = report.operations
        for operation in report.unreadable {
            if json {
                ProgressPrinter.emitJSON([
                    "event": "unreadable", "operation": operation.id, "reason": operation.reason,
                ])
            } else {
                print("failed: operation \(operation.id) cannot be read: \(operation.reason)".escapingControlCharacters)
            }
        }
        if host.engine.isShuttingDown && !json {
            print("stopped by a signal: the operations left are due for the next run")
        }
        let succeeded = operations.filter { $0.state == .succeeded }.count
        let failed = operations.filter { $0.state == .failed }.count + report.unreadable.count
        let waiting = operations.count - succeeded - (failed - report.unreadable.count)
        let count = operations.count + report.unreadable.count
        if json {
            ProgressPrinter.emitJSON([
                "event": "summary", "processed": count, "succeeded": succeeded, "failed": failed, "waiting": waiting,
            ])
        } else {
            print(
                "processed \(count) unfinished operation(s): \(succeeded) succeeded, \(failed) failed"
                    + (waiting > 0 ? ", \(waiting) still waiting" : "")
            )
        }
        if failed > 0 { throw ExitStatus.failed }
    }
}
