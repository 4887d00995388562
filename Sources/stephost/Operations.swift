import ArgumentParser
import Foundation
import StepHostCore
import StepHostSQLite

/// `stephost operations`: read operations from the database.
struct Operations: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List operations or show one: fields, custom fields, step history, last error, request sent.",
        subcommands: [List.self, Show.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List operations, newest first.")

        @OptionGroup var database: DatabaseOptions

        @Option(help: "Only operations in this state: pending, in_progress, succeeded, failed.")
        var state: OperationStateArgument?

        @Flag(help: "Print JSON instead of a table.")
        var json = false

        func run() async throws {
            let store = try database.open(.readOnly)
            let operations = try await store.operations(state: state?.state)
            if json {
                print(try OperationView.render(operations.map { OperationView.summary($0) }))
                return
            }
            var rows = [["ID", "INSTANCE", "STATE", "PASSES", "UPDATED", "DESCRIPTION"]]
            for operation in operations {
                rows.append([
                    operation.id, operation.instanceID, operation.state.rawValue, "\(operation.passes)",
                    OperationView.timestamp(operation.updatedAt), operation.description,
                ])
            }
            // Descriptions carry step messages: each row stays one line.
            print(TextTable.lines(rows).map(\.escapingControlCharacters).joined(separator: "\n"))
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show one operation: its fields, custom fields, step history, last error and request."
        )

        @OptionGroup var database: DatabaseOptions

        @Argument(help: "The operation id.")
        var id: String

        @Flag(help: "Print JSON instead of text.")
        var json = false

        func run() async throws {
            let store = try database.open(.readOnly)
            guard let operation = try await store.operation(id: id) else {
                printError(
                    "stephost: there is no operation \(id) in \(store.path); `stephost operations list` shows them"
                )
                throw ExitStatus.notFound
            }
            let runs = try await store.stepRuns(operationID: id)
            let claim = operation.state.isFinal ? nil : try await store.claim(operationID: id)
            print(
                json
                    ? try OperationView.render(OperationView.detail(operation, runs: runs, claim: claim))
                    : OperationView.text(operation, runs: runs, claim: claim)
            )
        }
    }
}

/// `--state` values.
struct OperationStateArgument: ExpressibleByArgument {
    var state: OperationState

    init?(argument: String) {
        guard let state = OperationState(rawValue: argument) else { return nil }
        self.state = state
    }

    static var allValueStrings: [String] { OperationState.allCases.map(\.rawValue) }
}
