import ArgumentParser
import Foundation
import Logging
import StepHostApplication
import StepHostCore
import StepHostSystem

/// `stephost check-plugin FILE…`: a plugin checked before it is deployed (see ``PluginCheck``).
struct CheckPlugin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-plugin",
        abstract:
            "Check plugin files before deploying them: trust, exports, ABI, names, weights, and each step run twice.",
        discussion: """
            Each FILE is copied to a private directory, loaded by the scanner child and run by runner children \
            only, as a host with process isolation runs it: nothing of it is loaded into this process. Reported: \
            trust as the file lies now (the host's rules), the symbols it exports (only stephost_plugin_init \
            should be), its ABI version, plugin and step names and weights, where each step falls in the pipeline \
            of --plugins-dir (conflicts named), and for each step two runs against the sample operation, the \
            second on what the first left, as a retried pass would: outcome, fields, overrides (secrets \
            redacted), labels, logs, duration, and whether the second run did the same as the first (steps must \
            be idempotent). A crash, an ABI fault or a deadline overrun is reported, never followed.

            Exit status: 0 every file is conformant; 4 warnings (it loads and runs, but something should be \
            fixed); 1 a file is broken (the host would refuse it, or a step faulted); 2 --plugins-dir cannot be \
            used; 64 a bad option or --operation; 66 an --operation file that does not exist.

            The sample operation without --operation:
            \(PluginCheck.defaultOperation)
            """
    )

    @Argument(help: ArgumentHelp("The plugin files to check.", valueName: "file"))
    var files: [String]

    @Option(
        name: .customLong("plugins-dir"),
        help: ArgumentHelp(
            "Place the steps in the pipeline of this plugin directory and name conflicts with its plugins (default: "
                + "the plugin alone with the built-in steps).",
            valueName: "directory"
        )
    )
    var pluginsDirectory: String?

    @Option(
        help: ArgumentHelp(
            "The sample operation, as JSON or @FILE (at most 1 MiB): {\"parameters\": {...}, \"fields\": {...}}, or the "
                + "parameters object alone (default: shown at the end of this help).",
            valueName: "json|@file"
        )
    )
    var operation: String?

    @Option(help: ArgumentHelp("Seconds one step run may take before its runner is stopped.", valueName: "seconds"))
    var deadline: Double = 60

    @Option(
        help: ArgumentHelp(
            "Seconds loading the plugin may take (its constructors and stephost_plugin_init).",
            valueName: "seconds"
        )
    )
    var initTimeout: Double = 10

    @Flag(help: "Print JSON instead of text.")
    var json = false

    @Option(help: "Log level on standard error.")
    var logLevel: LogLevelOption = .warning

    func validate() throws {
        guard deadline >= 0.001, deadline <= 3600 else {
            throw ValidationError("--deadline must be 0.001 to 3600 seconds; got \(deadline)")
        }
        guard initTimeout >= 0.001, initTimeout <= 3600 else {
            throw ValidationError("--init-timeout must be 0.001 to 3600 seconds; got \(initTimeout)")
        }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel.rawValue) ?? .warning
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var check = PluginCheck(logger: Logger(label: "stephost"))
        check.pluginsDirectory = pluginsDirectory
        check.deadline = .milliseconds(Int64(deadline * 1000))
        check.initTimeout = .milliseconds(Int64(initTimeout * 1000))
        if let operation {
            if operation.hasPrefix("@") {
                let path = String(operation.dropFirst())
                guard FileManager.default.fileExists(atPath: path) else {
                    printError("stephost: --operation file \(path) does not exist")
                    throw ExitStatus.notFound
                }
                check.operation = try Self.readOperation(path)
            } else {
                check.operation = operation
            }
        }
        do {
            _ = try check.sampleOperation()
        } catch {
            printError("stephost: --operation: \(error)")
            throw ExitStatus.invalidConfiguration
        }
        if let directory = pluginsDirectory, !FileManager.default.fileExists(atPath: directory) {
            let message = "--plugins-dir \(directory) does not exist; pass the directory the host loads plugins from"
            if json { print(PluginCheckReport.errorJSON(message)) }
            printError("stephost: \(message)")
            throw ExitStatus.pluginDirectoryUnusable
        }
        // Descendants a plugin leaves behind (a daemon it forked from a runner that then died) become this
        // process's, and are stopped when it ends.
        _ = stephost_become_subreaper()
        defer { _ = stephost_kill_descendants(getpid(), SIGKILL) }
        let directory = check.loadDirectory()
        var reports: [PluginCheckReport] = []
        for (index, file) in files.enumerated() {
            if !json && files.count > 1 { printError("checking \(file) (\(index + 1) of \(files.count))…") }
            let report = await check.check(file, in: directory)
            if !json { print(report.text() + (index + 1 < files.count ? "\n" : "")) }
            reports.append(report)
        }
        if json { print(PluginCheckReport.json(reports)) }
        if reports.contains(where: { $0.findings.contains { $0.code == "plugins-dir" } }) {
            throw ExitStatus.pluginDirectoryUnusable
        }
        switch reports.map(\.verdict).max(by: { $0.rank < $1.rank }) ?? .conformant {
        case .conformant: return
        case .warnings: throw ExitStatus.checkWarnings
        case .broken: throw ExitStatus.failed
        }
    }

    /// The --operation file's text: at most 1 MiB of a regular file (``InputFile``).
    static func readOperation(_ path: String) throws -> String {
        switch InputFile.read(path, limit: 1 << 20) {
        case .success(let data): return String(decoding: data, as: UTF8.self)
        case .failure(.missing(let reason)):
            printError("stephost: --operation file \(path) cannot be opened (\(reason))")
            throw ExitStatus.notFound
        case .failure(.unusable(let reason)):
            printError("stephost: --operation file \(path) cannot be used: \(reason)")
            throw ExitStatus.invalidConfiguration
        }
    }
}
