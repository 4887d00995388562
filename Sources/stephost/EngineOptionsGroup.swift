import ArgumentParser
import Foundation
import StepHostApplication
import StepHostCore
import StepHostEngine
import StepHostLoader

/// Where create_runtime sends its requests.
enum ProvisionerKind: String, ExpressibleByArgument, CaseIterable {
    case local, http
}

/// Options of the commands that run operations. They only parse and validate: ``ProvisioningHost`` builds the
/// application from the ``HostConfiguration`` they make.
struct EngineOptionsGroup: ParsableArguments {
    @Option(help: "Where create_runtime sends requests: local (records them in the database) or http.")
    var provisioner: ProvisionerKind = .local

    @Option(help: ArgumentHelp("The Runtime Provisioner's GraphQL endpoint, for --provisioner http.", valueName: "url"))
    var provisionerURL: String?

    @Option(help: "Seconds between status checks while the provisioner works.")
    var pollInterval: Double = 15

    @Option(
        name: .customLong("disable-plugin"),
        help: ArgumentHelp("Skip a plugin knowingly, by name or file name (repeatable).", valueName: "name")
    )
    var disabledPlugins: [String] = []

    @Option(help: "Hours an operation may take before it fails.")
    var deadlineHours: Double = 24

    @Option(help: "Seconds to wait when a step asks to retry without saying how long.")
    var defaultRetryDelay: Double = 10

    @Option(help: "Operations processed at once.")
    var workers: Int = 4

    func validate() throws {
        if provisioner == .http && provisionerURL == nil {
            throw ValidationError(
                "--provisioner http needs --provisioner-url, for example http://127.0.0.1:8080/graphql"
            )
        }
        if let provisionerURL, URL(string: provisionerURL)?.scheme?.hasPrefix("http") != true {
            throw ValidationError("--provisioner-url '\(provisionerURL)' is not an http(s) URL")
        }
        guard pollInterval > 0, deadlineHours > 0, defaultRetryDelay >= 0, workers >= 1 else {
            throw ValidationError("--poll-interval, --deadline-hours and --workers must be positive")
        }
    }

    /// The host configuration these options (and the shared ones) describe.
    func configuration(
        _ global: GlobalOptions,
        _ database: DatabaseOptions,
        access: HostConfiguration.DatabaseAccess
    ) -> HostConfiguration {
        var engine = EngineOptions()
        engine.deadline = .seconds(fractional: deadlineHours * 3600)
        engine.defaultRetryDelay = .seconds(fractional: defaultRetryDelay)
        engine.workers = workers
        let backend: HostConfiguration.Provisioner =
            switch provisioner {
            case .local: .local
            case .http: .http(url: URL(string: provisionerURL!)!, pollInterval: .seconds(fractional: pollInterval))
            }
        return HostConfiguration(
            pluginsDirectory: global.resolvedPluginsDirectory,
            disabledPlugins: Set(disabledPlugins),
            databasePath: database.resolvedPath,
            databaseAccess: access,
            provisioner: backend,
            engine: engine
        )
    }

    /// Builds the host with progress output, or prints why not and returns the matching exit status.
    func makeHost(
        _ global: GlobalOptions,
        _ database: DatabaseOptions,
        access: HostConfiguration.DatabaseAccess,
        showOperation: Bool
    ) throws -> ProvisioningHost {
        let printer = ProgressPrinter(showOperation: showOperation)
        do {
            return try ProvisioningHost(
                configuration(global, database, access: access),
                logger: global.makeLogger(),
                events: { printer.handle($0) }
            )
        } catch {
            switch error {
            case .pluginDirectory(let error):
                printError("stephost: \(error)")
                throw ExitStatus.pluginDirectoryUnusable
            case .brokenPlugins(let broken):
                printError("stephost: refusing to run operations while plugins are broken:")
                for plugin in broken {
                    printError("  \(plugin.file)\(plugin.name.map { " (plugin '\($0)')" } ?? ""): \(plugin.error)")
                }
                printError(
                    "Fix them, remove them from the plugin directory, or skip them knowingly with --disable-plugin NAME."
                )
                throw ExitStatus.brokenPlugins
            case .storage(let error):
                throw fail(error)
            }
        }
    }
}
