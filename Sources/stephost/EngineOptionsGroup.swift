import ArgumentParser
import StepHostApplication

/// Where create_runtime sends its requests.
enum ProvisionerKind: String, ExpressibleByArgument, CaseIterable {
    case local, http
}

/// Options of the commands that run operations. They only parse and validate: ``ProvisioningHost`` builds the
/// application from the ``HostConfiguration`` they make.
struct EngineOptionsGroup: ParsableArguments {
    // Every option is optional, so that the merge with the configuration file knows which ones were given: a flag
    // overrides the file, the file overrides the default (``configuration(_:_:_:access:)``).
    @Option(
        help: "Where create_runtime sends requests: local (records them in the database) or http (default: local)."
    )
    var provisioner: ProvisionerKind?

    @Option(help: ArgumentHelp("The Runtime Provisioner's GraphQL endpoint, for --provisioner http.", valueName: "url"))
    var provisionerURL: String?

    @Option(help: "Seconds between status checks while the provisioner works (0.01 to 86400; default 15).")
    var pollInterval: Double?

    @Option(
        help: "The most seconds one request to the provisioner may take, answer included (0.1 to 3600; default 30)."
    )
    var provisionerTimeout: Double?

    @Flag(
        inversion: .prefixedNo,
        help: ArgumentHelp(
            "Declare that the provisioner deduplicates provisionRuntime by its Idempotency-Key header (a repeated "
                + "request returns the first one's operation). Only then is a request whose outcome is unknown (a "
                + "timeout, a lost connection, a host that died while sending) sent again; without it create_runtime "
                + "sends at most once and fails the operation instead (default: not declared)."
        )
    )
    var provisionerIdempotent: Bool?

    @Option(
        name: .customLong("disable-plugin"),
        help: ArgumentHelp(
            "Skip a plugin knowingly (repeatable): by file name, with or without .so (the file is never opened), "
                + "or by plugin name (it is loaded, its steps are not used).",
            valueName: "name"
        )
    )
    var disabledPlugins: [String] = []

    @Option(help: "Hours an operation may take before it fails (above 0, at most 8760: one year; default 24).")
    var deadlineHours: Double?

    @Option(help: "Seconds to wait when a step asks to retry without saying how long (0 to 86400; default 10).")
    var defaultRetryDelay: Double?

    @Option(
        help: ArgumentHelp(
            "The shortest wait in seconds before a retried operation's next pass, whatever a step asks for (0.01 to "
                + "3600; default 0.1)."
        )
    )
    var minimumRetryDelay: Double?

    @Option(
        help: ArgumentHelp(
            "Seconds a host's claim on an operation holds unless renewed; it is renewed every third of it while a "
                + "step runs, so only a host that stopped loses its operations (1 to 86400; default 300)."
        )
    )
    var lease: Double?

    @Option(help: "Operations processed at once (1 to 256; default 4).")
    var workers: Int?

    @Option(
        help: ArgumentHelp(
            "How many times in a row a host may die while running the same step of an operation (a crashing plugin) "
                + "before the next host fails the operation instead of running that step again (1 to 100; default 3)."
        )
    )
    var maxHostDeaths: Int?

    @Option(
        help: ArgumentHelp(
            "Seconds a stopping host (SIGTERM, SIGINT) gives running steps to finish before it releases their "
                + "operations for the next start and exits (0 to 3600; default 30).",
            valueName: "seconds"
        )
    )
    var shutdownGrace: Double?

    /// Checks the flags that were given, with the ranges the configuration file's keys share (``SettingRange``).
    /// `--provisioner http` without a URL is checked once the file is merged: the file may hold the URL.
    func validate() throws {
        if let provisionerURL, let problem = HostConfiguration.provisionerURLProblem(provisionerURL) {
            throw ValidationError("--provisioner-url \(problem)")
        }
        try Self.check("--poll-interval", pollInterval, .pollInterval)
        try Self.check("--provisioner-timeout", provisionerTimeout, .provisionerTimeout)
        try Self.check("--deadline-hours", deadlineHours, .deadlineHours)
        try Self.check("--default-retry-delay", defaultRetryDelay, .defaultRetryDelay)
        try Self.check("--minimum-retry-delay", minimumRetryDelay, .minimumRetryDelay)
        try Self.check("--lease", lease, .lease)
        try Self.check("--shutdown-grace", shutdownGrace, .shutdownGrace)
        if let workers, let problem = SettingRange.workers.problem(workers) {
            throw ValidationError("--workers \(problem)")
        }
        if let maxHostDeaths, let problem = SettingRange.maximumHostDeaths.problem(maxHostDeaths) {
            throw ValidationError("--max-host-deaths \(problem)")
        }
    }

    private static func check(_ option: String, _ value: Double?, _ range: SettingRange) throws {
        if let value, let problem = range.problem(value) { throw ValidationError("\(option) \(problem)") }
    }
}
