import ArgumentParser
import Foundation
import StepHostEngine
import StepHostStorage

/// `stephost run`: processes every unfinished operation in the database until none is left.
struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Process every unfinished operation in the database until none is left.",
        discussion: """
            Finishes detached operations and those a stopped or killed host left behind: each is resumed \
            from its first step when due, with every persisted field kept; create_runtime never sends a \
            request twice. Parked operations are picked up when their retry is due. Exit status: 0 when \
            every operation processed succeeded, 1 when any failed.
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var engine: EngineOptionsGroup

    @Flag(help: "Run one pass of each operation due now and exit; parked operations stay parked (for cron).")
    var once = false

    func run() async throws {
        let (runner, store) = try engine.makeEngine(global, database, mode: .existing, showOperation: true)
        let before = try await store.operations(state: nil).filter { !$0.state.isFinal }.map(\.id)
        do {
            if once {
                try await runner.runDue()
            } else {
                try await runner.runUntilIdle()
            }
        } catch let error as StorageError {
            throw fail(error)
        }
        var counts: [OperationState: Int] = [:]
        for id in before {
            if let state = try await store.operation(id: id)?.state { counts[state, default: 0] += 1 }
        }
        let failed = counts[.failed] ?? 0
        let waiting = before.count - (counts[.succeeded] ?? 0) - failed
        print(
            "processed \(before.count) unfinished operation(s): \(counts[.succeeded] ?? 0) succeeded, \(failed) failed"
                + (waiting > 0 ? ", \(waiting) still waiting" : "")
        )
        if failed > 0 { throw ExitStatus.failed }
    }
}
