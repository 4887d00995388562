import ArgumentParser
import Foundation
import StepHostApplication
import StepHostCore
import StepHostStorage

/// `stephost plugins`: what operators do to plugins beyond listing them.
struct Plugins: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Manage plugins: clear a quarantine.",
        subcommands: [ClearQuarantine.self]
    )

    /// `stephost plugins clear-quarantine NAME`.
    struct ClearQuarantine: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "clear-quarantine",
            abstract: "Let a quarantined plugin run in the host's process again.",
            discussion: """
                A plugin whose in-process step killed the host is quarantined: its steps run in a runner process \
                (or, with `quarantine: refuse`, not at all) until its file changes or this command clears it. \
                Clear it once a fixed build is deployed, or when the death was not the plugin's fault. Every \
                build of the plugin is cleared. Exit status: 0 when something was cleared, 1 when the plugin was \
                not quarantined.
                """
        )

        @OptionGroup var database: DatabaseOptions
        @OptionGroup var config: ConfigFileOptions

        @Argument(help: "The plugin's declared name, as list-plugins shows it.")
        var name: String

        func run() async throws {
            let file = try config.load()
            let store = try await database.open(.existing, file)
            defer { try? store.close() }
            let cleared: Int
            do {
                cleared = try await store.clearQuarantine(plugin: name)
            } catch let error as StorageError {
                throw fail(error)
            }
            guard cleared > 0 else {
                printError("stephost: plugin '\(name)' is not quarantined in \(store.location)")
                throw ExitStatus.failed
            }
            print("cleared the quarantine of plugin '\(name)' (\(cleared) build\(cleared == 1 ? "" : "s"))")
        }
    }
}
