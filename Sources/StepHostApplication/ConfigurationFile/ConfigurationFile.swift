import Foundation
import Glibc
public import Logging
public import StepHostLoader

/// What an operator's configuration file (`stephost.yaml`) sets. Every setting is optional, so that a flag or
/// an environment variable can override it and an unset one keeps the built-in default:
/// flag > environment variable > file > default. `docs/stephost.example.yaml` shows every key.
///
/// Engine settings carry the names and the units of their flags (`engine.poll-interval` is `--poll-interval`,
/// in seconds) and the same ranges (``SettingRange``). Secrets never go in this file.
public struct ConfigurationFile: Sendable, Hashable {
    /// `plugins:`: the plugin directory and the isolation of the plugins' steps.
    public struct Plugins: Sendable, Hashable {
        public var directory: String?
        /// Default isolation of every plugin.
        public var isolation: Isolation?
        /// Default step deadline.
        public var deadline: Duration?
        /// Default runner limits; a `nil` limit is not set by the file.
        public var limits = ResourceLimits()
        public var quarantine: QuarantineAction?
        public var maximumStuckThreads: Int?
        public var initTimeout: Duration?
        public var killGrace: Duration?
        /// Per plugin, by plugin name or file name (`x.so`).
        public var settings: [String: PluginPolicyOverride] = [:]

        public init() {}
    }

    /// `engine:`: the options of the commands that run operations, in their flags' units.
    public struct Engine: Sendable, Hashable {
        /// Where `create_runtime` sends its requests (`--provisioner`).
        public enum Provisioner: String, Sendable, Hashable, CaseIterable {
            case local, http
        }

        public var provisioner: Provisioner?
        public var provisionerURL: String?
        /// Seconds.
        public var pollInterval: Double?
        /// Seconds.
        public var provisionerTimeout: Double?
        public var provisionerIdempotent: Bool?
        /// Hours.
        public var deadlineHours: Double?
        /// Seconds.
        public var defaultRetryDelay: Double?
        /// Seconds.
        public var minimumRetryDelay: Double?
        /// Seconds.
        public var lease: Double?
        public var workers: Int?
        public var maxHostDeaths: Int?
        /// Seconds a stopping host (`serve`, `run`) gives running steps to finish.
        public var shutdownGrace: Double?

        public init() {}
    }

    /// `server:`: how `stephost serve` listens and stops.
    public struct Server: Sendable, Hashable {
        public var host: String?
        public var port: Int?
        /// A file with one line `username:password` for the broker's basic authentication.
        public var credentialsFile: String?
        /// Seconds a connection with no request in progress is kept open.
        public var idleTimeout: Double?

        public init() {}
    }

    public var plugins = Plugins()
    public var server = Server()
    /// `catalog:`: the services and plans `GET /v2/catalog` offers; `nil` for the built-in one.
    public var catalog: BrokerCatalog?
    /// The SQLite database file.
    public var database: String?
    /// `database-url:`: a PostgreSQL database (`postgres://…`) instead of the SQLite file.
    public var databaseURL: String?
    public var engine = Engine()
    public var logLevel: Logger.Level?
    public var logFormat: LogFormat?

    public init() {}

    /// The largest file read: a configuration is a few hundred bytes; anything near this is a mistake.
    public static let maximumSize = 1 << 20
    /// The most nodes a file may hold once its aliases are expanded.
    public static let maximumNodes = 10_000
    /// The most aliases (`*name`) a file may use. Yams compares mapping keys by value while it composes, so an
    /// alias bomb used as a key would cost time exponential in the number of aliases before any node count
    /// could be taken; with this few, composing stays proportional to the file.
    public static let maximumAliases = 16

    /// The plugins whose settings say `disabled: true`, to add to those `--disable-plugin` names.
    public var disabledPlugins: Set<String> {
        Set(plugins.settings.filter { $0.value.disabled == true }.keys)
    }

    /// The isolation settings the file describes over the built-in defaults.
    public var isolation: IsolationConfiguration {
        var configuration = IsolationConfiguration()
        if let isolation = plugins.isolation { configuration.defaults.isolation = isolation }
        if let deadline = plugins.deadline { configuration.defaults.deadline = deadline }
        configuration.defaults.limits = configuration.defaults.limits.overridden(by: plugins.limits)
        configuration.plugins = plugins.settings
        if let quarantine = plugins.quarantine { configuration.quarantine = quarantine }
        if let threads = plugins.maximumStuckThreads { configuration.maximumStuckThreads = threads }
        if let timeout = plugins.initTimeout { configuration.initTimeout = timeout }
        if let grace = plugins.killGrace { configuration.killGrace = grace }
        return configuration
    }
}

extension ConfigurationFile {
    /// Reads and parses the file at `path`. Relative paths in it (`plugins.directory`, `database`) are taken from
    /// the file's own directory, so `--config /etc/stephost/stephost.yaml` means the same from any directory.
    ///
    /// Only a regular file of at most ``maximumSize`` bytes is read; a FIFO is refused without blocking.
    public static func load(path: String) throws(ConfigurationFileError) -> ConfigurationFile {
        let text = try read(path)
        var file = try parse(text, file: path)
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            file.plugins.directory = file.plugins.directory.map { resolve($0, from: directory) }
            file.database = file.database.map { resolve($0, from: directory) }
        }
        return file
    }

    private static func resolve(_ path: String, from directory: String) -> String {
        path.hasPrefix("/") ? path : (directory as NSString).appendingPathComponent(path)
    }

    private static func read(_ path: String) throws(ConfigurationFileError) -> String {
        func failure(_ code: ConfigurationFileError.Code, _ message: String) -> ConfigurationFileError {
            ConfigurationFileError(code, file: path, message)
        }
        // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer.
        let descriptor = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard descriptor >= 0 else {
            let reason = String(cString: strerror(errno))
            if errno == ENOENT {
                throw failure(.notFound, "the configuration file does not exist; check the path (\(reason))")
            }
            throw failure(.unreadable, "cannot open the configuration file: \(reason)")
        }
        defer { close(descriptor) }
        var status = stat()
        guard fstat(descriptor, &status) == 0 else {
            throw failure(.unreadable, "cannot read the configuration file: \(String(cString: strerror(errno)))")
        }
        guard status.st_mode & S_IFMT == S_IFREG else {
            throw failure(.notRegularFile, "is not a regular file; name a YAML file")
        }
        guard status.st_size <= maximumSize else {
            throw failure(.tooLarge, "is \(status.st_size) bytes; a configuration file is at most 1 MiB")
        }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while bytes.count <= maximumSize {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else {
                throw failure(.unreadable, "cannot read the configuration file: \(String(cString: strerror(errno)))")
            }
            if count == 0 { break }
            bytes += chunk[..<count]
        }
        // The file may have grown since fstat.
        guard bytes.count <= maximumSize else {
            throw failure(.tooLarge, "is over 1 MiB; a configuration file is at most 1 MiB")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw failure(.notText, "is not UTF-8 text")
        }
        return text
    }
}
