public import Foundation
public import StepHostEngine
public import StepHostLoader
import StepHostPostgres

/// Everything a host is built from: where the plugins and the database are, which plugins to skip, where
/// `create_runtime` sends its requests, and how the engine runs. Front ends parse and validate their input
/// into this value; ``ProvisioningHost`` builds the application from it.
public struct HostConfiguration: Sendable {
    /// Where `create_runtime` sends its requests.
    public enum Provisioner: Sendable, Hashable {
        /// The embedded local provisioner: records each request in the database.
        case local
        /// A Runtime Provisioner's GraphQL endpoint, asked again every `pollInterval` while it works. Each
        /// request may take at most `timeout`; `idempotent` declares that the provisioner deduplicates
        /// `provisionRuntime` by its `Idempotency-Key` (see ``ProvisionerBackend/isIdempotent``).
        case http(url: URL, pollInterval: Duration, idempotent: Bool = false, timeout: Duration = .seconds(30))
    }

    /// How the database is opened.
    public enum DatabaseAccess: Sendable, Hashable {
        /// Create the file if it is missing and bring the schema up to date.
        case create
        /// The file must exist; bring the schema up to date.
        case existing
    }

    /// The plugin directory.
    public var pluginsDirectory: String
    /// Plugins to skip knowingly, by plugin name, file name or path.
    public var disabledPlugins: Set<String>
    /// The SQLite database file (unused when ``databaseURL`` is set).
    public var databasePath: String
    /// A PostgreSQL database (`postgres://…`) that several hosts share; `nil` for the SQLite file.
    public var databaseURL: String?
    public var databaseAccess: DatabaseAccess
    public var provisioner: Provisioner
    public var engine: EngineOptions
    /// Each plugin's isolation, step deadline and runner limits, and what quarantine does.
    public var isolation: IsolationConfiguration
    /// The `stephost` executable the scanner and runner children run.
    public var childExecutable: String
    /// Whether the scanner's results are cached (``PluginSelection``).
    public var scanCache: Bool

    public init(
        pluginsDirectory: String,
        disabledPlugins: Set<String> = [],
        databasePath: String,
        databaseURL: String? = nil,
        databaseAccess: DatabaseAccess = .create,
        provisioner: Provisioner = .local,
        engine: EngineOptions = EngineOptions(),
        isolation: IsolationConfiguration = IsolationConfiguration(),
        childExecutable: String = ChildEnvironment.defaultExecutable,
        scanCache: Bool = true
    ) {
        self.isolation = isolation
        self.childExecutable = childExecutable
        self.scanCache = scanCache
        self.pluginsDirectory = pluginsDirectory
        self.disabledPlugins = disabledPlugins
        self.databasePath = databasePath
        self.databaseURL = databaseURL
        self.databaseAccess = databaseAccess
        self.provisioner = provisioner
        self.engine = engine
        self.isolation = isolation
    }
}

extension HostConfiguration {
    /// Where the database is, for messages: the SQLite file, or the PostgreSQL server and database without the
    /// password.
    public var databaseLocation: String {
        databaseURL.map { PostgresOperationStore.location(ofURL: $0) ?? "(a PostgreSQL URL that cannot be read)" }
            ?? databasePath
    }
}
