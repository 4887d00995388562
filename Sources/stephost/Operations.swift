import ArgumentParser
import Foundation
import StepHostApplication
import StepHostCore
import StepHostStorage

/// `stephost operations`: read operations from the database.
struct Operations: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List operations or show one: fields, custom fields, step history, last error, request sent.",
        subcommands: [List.self, Show.self]
    )

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List operations, newest first.")

        @OptionGroup var database: DatabaseOptions
        @OptionGroup var config: ConfigFileOptions

        @Option(help: "Only operations in this state: pending, in_progress, succeeded, failed.")
        var state: OperationStateArgument?

        @Option(help: "Only the operations of this service instance.")
        var instance: String?

        @Option(help: "At most this many operations, the newest (1 or more).")
        var limit: Int?

        @Flag(help: "Print JSON instead of a table.")
        var json = false

        func validate() throws {
            if let limit, limit < 1 { throw ValidationError("--limit must be at least 1, not \(limit)") }
        }

        func run() async throws {
            let store = try await database.open(.readOnly, try config.load())
            defer { try? store.close() }
            do {
                try await list(store)
            } catch let error as StorageError {
                throw fail(error)
            }
        }

        private func list(_ store: any HostStore) async throws {
            var listing = try await store.operations(state: state?.state)
            if let instance { listing.operations = listing.operations.filter { $0.instanceID == instance } }
            if let limit { listing.operations = Array(listing.operations.prefix(limit)) }
            // One damaged row never hides the others: it is listed with why it cannot be read.
            for operation in listing.unreadable {
                printError(
                    "stephost: operation \(operation.id) cannot be read: \(operation.reason)".escapingControlCharacters
                )
            }
            if json {
                let unreadable: [[String: Any]] = listing.unreadable.map {
                    ["id": $0.id, "state": $0.state, "unreadable": $0.reason]
                }
                print(try OperationView.render(listing.operations.map { OperationView.summary($0) } + unreadable))
                return
            }
            var rows = [["ID", "INSTANCE", "STATE", "PASSES", "UPDATED", "DESCRIPTION"]]
            for operation in listing.operations {
                rows.append([
                    operation.id, operation.instanceID, operation.state.rawValue, "\(operation.passes)",
                    OperationView.timestamp(operation.updatedAt), operation.description,
                ])
            }
            for operation in listing.unreadable {
                rows.append([operation.id, "?", operation.state, "?", "?", "cannot be read: \(operation.reason)"])
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
        @OptionGroup var config: ConfigFileOptions

        @Argument(help: "The operation id, or its first characters (at least 4) when they name one operation only.")
        var id: String

        @Flag(help: "Print JSON instead of text.")
        var json = false

        func run() async throws {
            let store = try await database.open(.readOnly, try config.load())
            defer { try? store.close() }
            do {
                try await show(store)
            } catch let error as StorageError {
                throw fail(error)
            }
        }

        /// The full id `id` names: itself if there is such an operation, else the one operation whose id begins
        /// with it. Several, or none: says so and exits.
        private func resolve(_ store: any HostStore) async throws -> String {
            if try await store.operationIDs(prefix: id, limit: 1).first == id { return id }
            let candidates = id.count >= 4 ? try await store.operationIDs(prefix: id, limit: 11) : []
            if candidates.count == 1 { return candidates[0] }
            if candidates.isEmpty {
                let hint = id.count < 4 ? " (a prefix needs at least 4 characters)" : ""
                printError(
                    "stephost: there is no operation \(id) in \(store.location)\(hint); `stephost operations list` shows them"
                        .escapingControlCharacters
                )
                throw ExitStatus.notFound
            }
            let shown = candidates.prefix(10).joined(separator: ", ") + (candidates.count > 10 ? ", …" : "")
            printError(
                "stephost: \(id) is the beginning of several operation ids (\(shown)); give more of it"
                    .escapingControlCharacters
            )
            throw ExitCode.validationFailure
        }

        private func show(_ store: any HostStore) async throws {
            let id = try await resolve(store)
            let found: OperationRecord?
            do {
                found = try await store.operation(id: id)
            } catch let error as StorageError where error.code == .corrupt {
                // What is stored, as stored, with why it cannot be read.
                let columns = try await store.storedColumns(id: id) ?? []
                if json {
                    var object: [String: Any] = ["id": id, "unreadable": error.description]
                    object["stored"] = Dictionary(uniqueKeysWithValues: columns.map { ($0.column, $0.value as Any) })
                    print(try OperationView.render(object))
                } else {
                    var lines = ["operation \(id) cannot be read: \(error)", "stored columns"]
                    lines += columns.map { "  \($0.column) = \($0.value ?? "NULL")" }
                    print(lines.map(\.escapingControlCharacters).joined(separator: "\n"))
                }
                throw ExitStatus.unreadableOperation
            }
            guard var operation = found else {
                printError(
                    "stephost: there is no operation \(id) in \(store.location); `stephost operations list` shows them"
                )
                throw ExitStatus.notFound
            }
            let runs = try await store.stepRuns(operationID: id)
            // Answers that reached the host after it had lost the operation were recorded apart: shown with it.
            operation.runtime.attempts += try await store.provisionerAnswers(operationID: id)
            let claim = operation.state.isFinal ? nil : try await store.claim(operationID: id)
            print(
                json
                    ? try OperationView.render(
                        OperationView.detail(operation, runs: runs, claim: claim),
                        fields: operation.fields
                    )
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
