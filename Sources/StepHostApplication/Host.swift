import Foundation
public import Logging
public import StepHostCore
public import StepHostEngine
public import StepHostLoader
public import StepHostPipeline
import StepHostRuntime
public import StepHostSQLite
public import StepHostStorage

/// The one place that builds a running stephost from a ``HostConfiguration``: plugins → disable policy →
/// pipeline → store → provisioner backend → engine. The CLI, the benchmark and (later) the service use it.
///
/// Plugins are loaded and judged before the database is opened, so a refusal writes nothing.
public final class ProvisioningHost: Sendable {
    /// The built-in steps every pipeline has.
    public static let builtInSteps = [CreateRuntimeStep.identity]

    public let configuration: HostConfiguration
    public let plugins: PluginSelection
    public let pipeline: Pipeline
    public let store: SQLiteOperationStore
    public let engine: Engine

    /// Builds the host.
    ///
    /// - Throws: ``HostError``: the plugin directory is unusable, a plugin is broken and not disabled, or
    ///   the database cannot be used. Nothing is written in the first two cases.
    public init(
        _ configuration: HostConfiguration,
        logger: Logger,
        clock: any HostClock = SystemClock(),
        events: @escaping @Sendable (EngineEvent) -> Void = { _ in }
    ) throws(HostError) {
        self.configuration = configuration
        do {
            plugins = try PluginSelection(
                directory: configuration.pluginsDirectory,
                disabledPlugins: configuration.disabledPlugins,
                logger: logger
            )
        } catch {
            throw .pluginDirectory(error)
        }
        if !plugins.broken.isEmpty { throw .brokenPlugins(plugins.broken) }
        do {
            store = try SQLiteOperationStore(
                path: configuration.databasePath,
                mode: configuration.databaseAccess == .create ? .create : .existing
            )
        } catch let error as StorageError {
            throw .storage(error)
        } catch {
            throw .storage(
                StorageError(.unavailable, "the database \(configuration.databasePath) failed", cause: "\(error)")
            )
        }
        let provisioner: any ProvisionerBackend =
            switch configuration.provisioner {
            case .local: LocalProvisioner(records: store)
            case .http(let url, let pollInterval, let idempotent, let timeout):
                HTTPProvisioner(
                    url: url,
                    pollInterval: pollInterval,
                    idempotent: idempotent,
                    timeout: timeout.timeInterval
                )
            }
        // One thread per pass the engine runs at once: each pass runs on it and calls its plugin steps there.
        let executor = BlockingExecutor(name: "stephost-step", maximumThreads: configuration.engine.workers)
        pipeline = Pipeline(
            InProcessStep.steps(of: plugins.used, executor: executor)
                + [CreateRuntimeStep(provisioner: provisioner, clock: clock, answers: store)]
        )
        engine = Engine(
            pipeline: pipeline,
            store: store,
            options: configuration.engine,
            logger: logger,
            clock: clock,
            passExecutor: executor,
            events: events
        )
    }
}

/// Why a host could not be built.
public enum HostError: Error, Sendable {
    /// The plugin directory is missing or untrusted; nothing was loaded from it.
    case pluginDirectory(PluginDirectoryError)
    /// These plugins are broken and not disabled; the host fails closed.
    case brokenPlugins([BrokenPlugin])
    /// The database cannot be used.
    case storage(StorageError)
}
