import ArgumentParser
import Foundation
import Logging
import StepHostEngine
import StepHostLoader
import StepHostPipeline
import StepHostRuntime
import StepHostStorage

/// Where create_runtime sends its requests.
enum ProvisionerKind: String, ExpressibleByArgument, CaseIterable {
    case local, http
}

/// Options of the commands that run operations.
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

    /// Loads the plugins and refuses to go on while any of them is broken, unless it is disabled.
    func pipeline(_ global: GlobalOptions, logger: Logger) throws -> Pipeline {
        let catalog: PluginCatalog
        do {
            catalog = try PluginLoader(logger: logger).load(directory: global.resolvedPluginsDirectory)
        } catch {
            printError("stephost: \(error)")
            throw ExitStatus.pluginDirectoryUnusable
        }
        let disabled = Set(disabledPlugins)
        func isDisabled(name: String?, file: String) -> Bool {
            disabled.contains(name ?? "") || disabled.contains(file)
                || disabled.contains((file as NSString).lastPathComponent)
        }
        let broken = catalog.broken.filter { !isDisabled(name: $0.name, file: $0.file) }
        if !broken.isEmpty {
            printError("stephost: refusing to run operations while plugins are broken:")
            for plugin in broken {
                printError("  \(plugin.file)\(plugin.name.map { " (plugin '\($0)')" } ?? ""): \(plugin.error)")
            }
            printError(
                "Fix them, remove them from the plugin directory, or skip them knowingly with --disable-plugin NAME."
            )
            throw ExitStatus.brokenPlugins
        }
        let used = catalog.plugins.filter { !isDisabled(name: $0.name, file: $0.file) }
        for plugin in catalog.plugins where !used.contains(where: { $0.file == plugin.file }) {
            logger.warning("plugin disabled", metadata: ["plugin": "\(plugin.name)", "file": "\(plugin.file)"])
        }
        return Pipeline(plugins: used)
    }

    /// Loads the plugins (refusing broken ones), opens the database and builds the engine with progress output.
    /// Plugins are checked before the database is opened, so a refusal writes nothing.
    func makeEngine(
        _ global: GlobalOptions,
        _ database: DatabaseOptions,
        mode: SQLiteOperationStore.OpenMode,
        showOperation: Bool
    ) throws -> (Engine, SQLiteOperationStore) {
        let logger = global.makeLogger()
        let pipeline = try pipeline(global, logger: logger)
        let store = try database.open(mode)
        let printer = ProgressPrinter(showOperation: showOperation)
        let engine = Engine(
            pipeline: pipeline,
            store: store,
            provisioner: backend(store: store),
            options: engineOptions(),
            logger: logger,
            events: { printer.handle($0) }
        )
        return (engine, store)
    }

    func engineOptions() -> EngineOptions {
        var options = EngineOptions()
        options.deadline = .milliseconds(Int64(deadlineHours * 3_600_000))
        options.defaultRetryDelay = .milliseconds(Int64(defaultRetryDelay * 1000))
        options.workers = workers
        return options
    }

    func backend(store: any OperationStore) -> any ProvisionerBackend {
        switch provisioner {
        case .local:
            return LocalProvisioner(store: store)
        case .http:
            return HTTPProvisioner(
                url: URL(string: provisionerURL!)!,
                pollInterval: .milliseconds(Int64(pollInterval * 1000))
            )
        }
    }
}
