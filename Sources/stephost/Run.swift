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

    func run() async throws {
        let (runner, store) = try engine.makeEngine(global, database, mode: .existing, showOperation: true)
        let before = try await store.operations(state: nil).filter { !$0.state.isFinal }.map(\.id)
        do {
            try await runner.runUntilIdle()
        } catch let error as StorageError {
            throw fail(error)
        }
        var failed = 0
        for id in before where try await store.operation(id: id)?.state == .failed { failed += 1 }
        print("processed \(before.count) unfinished operation(s): \(before.count - failed) succeeded, \(failed) failed")
        if failed > 0 { throw ExitStatus.failed }
    }
}
