import ArgumentParser
import Foundation
import StepHostApplication
import StepHostCore
import StepHostEngine
import StepHostStorage

/// `stephost provision`: creates an operation and runs it to a final state.
struct Provision: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Provision a runtime: create an operation and run it through the steps to a final state.",
        discussion: """
            Parameters are one JSON object, given inline or as @file. Only "name" (the runtime's name, a DNS \
            label) is required; the README lists every parameter and its default. Keys stephost does not know \
            are kept for the steps. Progress shows each step with its outcome and duration. Exit status: 0 \
            when the operation succeeded, 1 when it failed, 3 when a plugin is broken, 64 for an invalid \
            option or configuration file, 65 for invalid parameters, 66 when the parameters file or a named \
            configuration file is missing, 74 or 78 when the database cannot be used. \
            Nothing is written when the input is rejected.
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var engine: EngineOptionsGroup
    @OptionGroup var config: ConfigFileOptions

    @Option(
        help: ArgumentHelp("The provisioning parameters: a JSON object, or @file to read one.", valueName: "json|@file")
    )
    var parameters: String

    @Option(help: "The service instance id (default: a new UUID).")
    var instanceID: String?

    @Flag(help: "Print one JSON object per line per event (created, pass_started, step_finished, parked, finished).")
    var json = false

    @Flag(help: "Only create the operation; `stephost run` processes it.")
    var detach = false

    func validate() throws {
        if let instanceID {
            guard (1...256).contains(instanceID.utf8.count),
                instanceID.unicodeScalars.allSatisfy({
                    $0.value > 0x20 && $0.value != 0x7F && !(0x80...0x9F ~= $0.value)
                })
            else {
                throw ValidationError(
                    "--instance-id must be 1 to 256 bytes of printable text without spaces (a service instance id such "
                        + "as a UUID); got \(instanceID.utf8.count) bytes"
                )
            }
        }
        // Swift repairs arguments that are not UTF-8 (with U+FFFD) before this command sees them; the same
        // bytes in an @file are refused, so inline they are too. Checked on the raw bytes of the process.
        for index in 1..<Int(CommandLine.argc) {
            guard let raw = CommandLine.unsafeArgv[index], String(validatingCString: raw) != nil else {
                printError(
                    "stephost: invalid parameters: argument \(index) is not UTF-8 text; give the parameters as UTF-8 "
                        + "JSON, inline or with @file"
                )
                throw ExitStatus.invalidParameters
            }
        }
    }

    func run() async throws {
        let file = try config.load()
        let text = try readParameters()
        let parsed: ProvisioningParameters
        do {
            parsed = try ProvisioningParameters(json: text)
        } catch {
            printError("stephost: \(error)")
            throw ExitStatus.invalidParameters
        }
        let host = try await engine.makeHost(global, database, file, access: .create, showOperation: false, json: json)
        let path = host.configuration.databaseLocation
        do {
            let operation = try await host.engine.createOperation(parameters: parsed, instanceID: instanceID)
            if json {
                ProgressPrinter.emitJSON([
                    "event": "created", "operation": operation.id, "instance": operation.instanceID, "database": path,
                ])
            } else {
                print("operation \(operation.id) for instance \(operation.instanceID) (database \(path))")
            }
            if detach {
                if !json { print("detached: `stephost run --db \(path)` processes it") }
                return
            }
            let final = try await host.engine.runToCompletion(operationID: operation.id)
            if final.state != .succeeded { throw ExitStatus.failed }
        } catch let error as StorageError {
            throw fail(error)
        } catch let error as EngineStopped {
            printError("stephost: \(error)")
            throw ExitStatus.hostStopped
        }
    }

    private func readParameters() throws -> String {
        guard parameters.hasPrefix("@") else { return parameters }
        let path = String(parameters.dropFirst())
        // 1 MiB: larger than any parameters that are accepted, so one a little too large is read and refused with
        // its size by the validation.
        let data: Data
        switch InputFile.read(path, limit: 1 << 20) {
        case .success(let read): data = read
        case .failure(.missing):
            printError("stephost: cannot read the parameters file \(path); check the path after '@'")
            throw ExitStatus.notFound
        case .failure(.unusable(let reason)):
            printError("stephost: invalid parameters: cannot use the parameters file \(path): \(reason)")
            throw ExitStatus.invalidParameters
        }
        guard let text = String(data: data, encoding: .utf8) else {
            printError("stephost: invalid parameters: \(path) is not UTF-8 text")
            throw ExitStatus.invalidParameters
        }
        return text
    }
}
