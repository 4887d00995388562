import ArgumentParser
import Foundation
import StepHostApplication
import StepHostLoader
import StepHostSystem

/// The `stephost` command: a provisioning step host that loads step plugins and runs operations.
@main
struct StepHostCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stephost",
        abstract: "Run provisioning operations through step plugins (.so files) loaded from a plugin directory.",
        discussion: """
            Plugins are shared objects that export stephost_plugin_init (see `stephost plugin-header`). \
            Their steps run in the order of their weights around the built-in create_runtime step (weight 100).
            """,
        version: StepHostVersion.text,
        subcommands: [
            Provision.self, Run.self, Serve.self, Operations.self, ListPlugins.self, CheckPlugin.self, NewPlugin.self,
            Plugins.self,
            PluginHeader.self,
        ]
    )

    /// The scanner and runner children are this binary too; they are told apart before any parsing.
    static func main() async {
        if let status = ChildMode.run(CommandLine.arguments) { Foundation.exit(status) }
        // The host: an in-process plugin's exit() ends it with status 70 and says so, never with the plugin's status.
        stephost_guard_exit()
        // As AsyncParsableCommand.main does, but the host says when it exits by itself: a step stuck in plugin code on
        // another thread (the reason `run` or `serve` stops with 75) must not turn that exit into the 70 of a plugin
        // that called exit().
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            stephost_host_exits()
            exit(withError: error)
        }
        stephost_host_exits()
    }
}
