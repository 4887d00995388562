import ArgumentParser
import Foundation
import StepHostEngine
import StepHostRuntime
import StepHostStorage

/// `stephost provision`: creates an operation and runs it to a final state.
struct Provision: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Provision a runtime: create an operation and run it through the steps to a final state.",
        discussion: """
            Parameters are one JSON object, given inline or as @file. Only "name" (the runtime's name, a DNS \
            label) is required; the README lists every parameter and its default. Keys stephost does not know \
            are kept for the steps. Progress shows each step with its outcome and duration. Exit status: 0 \
            when the operation succeeded, 1 when it failed, 3 when a plugin is broken, 65 for invalid \
            parameters, 66 when the parameters file is missing, 74 or 78 when the database cannot be used. \
            Nothing is written when the input is rejected.
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var engine: EngineOptionsGroup

    @Option(
        help: ArgumentHelp("The provisioning parameters: a JSON object, or @file to read one.", valueName: "json|@file")
    )
    var parameters: String

    @Option(help: "The service instance id (default: a new UUID).")
    var instanceID: String?

    @Flag(help: "Only create the operation; `stephost run` processes it.")
    var detach = false

    func run() async throws {
        let text = try readParameters()
        do {
            _ = try ProvisioningParameters(json: text)
        } catch {
            printError("stephost: \(error)")
            throw ExitStatus.invalidParameters
        }
        let (runner, store) = try engine.makeEngine(global, database, mode: .create, showOperation: false)
        let operation: OperationRecord
        do {
            operation = try await runner.createOperation(parameters: text, instanceID: instanceID)
        } catch let error as StorageError {
            throw fail(error)
        }
        print("operation \(operation.id) for instance \(operation.instanceID) (database \(store.path))")
        if detach {
            print("detached: `stephost run --db \(store.path)` processes it")
            return
        }
        do {
            try await runner.runUntilIdle(only: operation.id)
        } catch let error as StorageError {
            throw fail(error)
        }
        let final = try await store.operation(id: operation.id)
        if final?.state != .succeeded { throw ExitStatus.failed }
    }

    private func readParameters() throws -> String {
        guard parameters.hasPrefix("@") else { return parameters }
        let path = String(parameters.dropFirst())
        guard let data = FileManager.default.contents(atPath: path) else {
            printError("stephost: cannot read the parameters file \(path); check the path after '@'")
            throw ExitStatus.notFound
        }
        guard let text = String(data: data, encoding: .utf8) else {
            printError("stephost: invalid parameters: \(path) is not UTF-8 text")
            throw ExitStatus.invalidParameters
        }
        return text
    }
}
