import ArgumentParser
import Foundation
import Logging
import StepHostApplication
import StepHostLoader
import StepHostStorage

/// `stephost list-plugins`: the pipeline in the order it runs, and every broken plugin with its reason.
struct ListPlugins: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list-plugins",
        abstract: "Show the steps in the order they run, and every plugin that failed to load and why.",
        discussion: """
            Steps run by weight (create_runtime is 100), then by plugin name, then in the order each plugin \
            lists them. Exit status: 0 when every plugin loaded, 1 when any plugin is broken, 2 when the \
            plugin directory itself cannot be used.
            """
    )

    @OptionGroup var options: GlobalOptions
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var config: ConfigFileOptions

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    @Option(
        name: .customLong("disable-plugin"),
        help: ArgumentHelp(
            "Preview the pipeline without a plugin, as provision and run would skip it: by file name (never "
                + "opened) or plugin name (repeatable).",
            valueName: "name"
        )
    )
    var disabledPlugins: [String] = []

    func run() async throws {
        let file = try config.load()
        let logger = options.makeLogger(file)
        let directory = options.resolvedPluginsDirectory(file)
        // The file's `disabled: true` plugins are skipped as provision and run skip them.
        let disabled = Set(disabledPlugins).union(file.disabledPlugins)
        let selection: PluginSelection
        do {
            selection = try PluginSelection(
                directory: directory,
                disabledPlugins: disabled,
                isolation: file.isolation,
                logger: logger
            )
        } catch {
            if json {
                print(try ListPluginsReport.directoryErrorJSON(error))
            } else {
                printError("stephost: \(error)")
            }
            throw ExitCode(2)
        }
        var report = ListPluginsReport(selection: selection)
        // Quarantined builds, when the database exists; list-plugins never creates or changes it.
        let databaseURL = try database.resolvedURL(file)
        let databasePath = database.resolvedPath(file)
        if databaseURL != nil || FileManager.default.fileExists(atPath: databasePath) {
            do {
                let store = try await HostStores.open(
                    path: databasePath,
                    url: databaseURL,
                    access: .readOnly,
                    logger: Logger(label: "stephost.database") { _ in SwiftLogNoOpLogHandler() }
                )
                defer { try? store.close() }
                report.quarantined = try await store.quarantinedPlugins()
            } catch {
                report.quarantineNote =
                    "quarantined plugins could not be read from \(database.location(file)): \(error)"
            }
        }
        print(json ? try report.json() : report.table())
        if !selection.broken.isEmpty { throw ExitCode(1) }
    }
}
