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

    @Option(help: "Seconds between status checks while the provisioner works (0.01 to 86400).")
    var pollInterval: Double = 15

    @Option(help: "The most seconds one request to the provisioner may take, answer included (0.1 to 3600).")
    var provisionerTimeout: Double = 30

    @Flag(
        help: ArgumentHelp(
            "Declare that the provisioner deduplicates provisionRuntime by its Idempotency-Key header (a repeated "
                + "request returns the first one's operation). Only then is a request whose outcome is unknown (a "
                + "timeout, a lost connection, a host that died while sending) sent again; without it create_runtime "
                + "sends at most once and fails the operation instead."
        )
    )
    var provisionerIdempotent = false

    @Option(
        name: .customLong("disable-plugin"),
        help: ArgumentHelp(
            "Skip a plugin knowingly (repeatable): by file name, with or without .so (the file is never opened), "
                + "or by plugin name (it is loaded, its steps are not used).",
            valueName: "name"
        )
    )
    var disabledPlugins: [String] = []

    @Option(help: "Hours an operation may take before it fails (above 0, at most 8760: one year).")
    var deadlineHours: Double = 24

    @Option(help: "Seconds to wait when a step asks to retry without saying how long (0 to 86400).")
    var defaultRetryDelay: Double = 10

    @Option(
        help:
            "The shortest wait in seconds before a retried operation's next pass, whatever a step asks for (0.01 to 3600)."
    )
    var minimumRetryDelay: Double = 0.1

    @Option(
        help: ArgumentHelp(
            "Seconds a host's claim on an operation holds unless renewed; it is renewed every third of it while a "
                + "step runs, so only a host that stopped loses its operations (1 to 86400)."
        )
    )
    var lease: Double = 300

    @Option(help: "Operations processed at once (1 to 256).")
    var workers: Int = 4

    @Option(
        help: ArgumentHelp(
            "How many times in a row a host may die while running the same step of an operation (a crashing plugin) "
                + "before the next host fails the operation instead of running that step again (1 to 100)."
        )
    )
    var maxHostDeaths: Int = 3

    func validate() throws {
        if provisioner == .http && provisionerURL == nil {
            throw ValidationError(
                "--provisioner http needs --provisioner-url, for example http://127.0.0.1:8080/graphql"
            )
        }
        if let provisionerURL {
            let components = URLComponents(string: provisionerURL)
            guard let components, ["http", "https"].contains(components.scheme?.lowercased() ?? ""),
                !(components.host ?? "").isEmpty
            else {
                throw ValidationError(
                    "--provisioner-url must be an http:// or https:// URL with a host, for example "
                        + "http://127.0.0.1:8080/graphql"
                )
            }
            if let port = components.port, !(1...65_535).contains(port) {
                throw ValidationError("--provisioner-url has the port \(port); a port is 1 to 65535")
            }
        }
        // Every number is checked here, before anything is opened or written: a value Duration cannot hold
        // (inf, nan, 1e300) would otherwise stop the host after the database was created.
        try Self.check("--poll-interval", pollInterval, in: 0.01...86_400, unit: "seconds")
        try Self.check("--provisioner-timeout", provisionerTimeout, in: 0.1...3_600, unit: "seconds")
        try Self.check("--deadline-hours", deadlineHours, in: 0...8_760, unit: "hours", excludingLowerBound: true)
        try Self.check("--default-retry-delay", defaultRetryDelay, in: 0...86_400, unit: "seconds")
        try Self.check("--minimum-retry-delay", minimumRetryDelay, in: 0.01...3_600, unit: "seconds")
        try Self.check("--lease", lease, in: 1...86_400, unit: "seconds")
        guard (1...256).contains(workers) else {
            throw ValidationError("--workers must be a whole number from 1 to 256; got \(workers)")
        }
        guard (1...100).contains(maxHostDeaths) else {
            throw ValidationError("--max-host-deaths must be a whole number from 1 to 100; got \(maxHostDeaths)")
        }
    }

    private static func check(
        _ option: String,
        _ value: Double,
        in range: ClosedRange<Double>,
        unit: String,
        excludingLowerBound: Bool = false
    ) throws {
        let low = excludingLowerBound ? "above \(range.lowerBound.formatted())" : "from \(range.lowerBound.formatted())"
        guard value.isFinite, range.contains(value), !(excludingLowerBound && value == range.lowerBound) else {
            throw ValidationError(
                "\(option) must be a number of \(unit) \(low) to \(range.upperBound.formatted()); got \(value)"
            )
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
        engine.minimumRetryDelay = .seconds(fractional: minimumRetryDelay)
        engine.lease = .seconds(fractional: lease)
        engine.workers = workers
        engine.maximumHostDeaths = maxHostDeaths
        let backend: HostConfiguration.Provisioner =
            switch provisioner {
            case .local: .local
            case .http:
                .http(
                    url: URL(string: provisionerURL!)!,
                    pollInterval: .seconds(fractional: pollInterval),
                    idempotent: provisionerIdempotent,
                    timeout: .seconds(fractional: provisionerTimeout)
                )
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
