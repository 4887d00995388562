import Foundation
public import Logging
public import StepHostCore
public import StepHostEngine
public import StepHostLoader
public import StepHostPipeline
import StepHostRuntime
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
    /// The SQLite file, or the PostgreSQL database that several hosts share.
    public let store: any HostStore
    public let engine: Engine
    /// Quarantined plugin builds, as the database had them at start and as found since.
    public let quarantine: QuarantineList
    /// In-process steps stuck past their deadlines.
    public let stuckSteps: StuckSteps

    /// Builds the host.
    ///
    /// - Throws: ``HostError``: the plugin directory is unusable, a plugin is broken and not disabled, or
    ///   the database cannot be used. Nothing is written in the first two cases.
    public init(
        _ configuration: HostConfiguration,
        logger: Logger,
        clock: any HostClock = SystemClock(),
        events: @escaping @Sendable (EngineEvent) -> Void = { _ in }
    ) async throws(HostError) {
        self.configuration = configuration
        do {
            plugins = try PluginSelection(
                directory: configuration.pluginsDirectory,
                disabledPlugins: configuration.disabledPlugins,
                isolation: configuration.isolation,
                childExecutable: configuration.childExecutable,
                scanCache: configuration.scanCache,
                logger: logger
            )
        } catch {
            throw .pluginDirectory(error)
        }
        if !plugins.broken.isEmpty { throw .brokenPlugins(plugins.broken) }
        do {
            store = try await HostStores.open(
                path: configuration.databasePath,
                url: configuration.databaseURL,
                access: configuration.databaseAccess == .create ? .create : .existing,
                logger: logger
            )
        } catch let error as StorageError {
            throw .storage(error)
        } catch {
            throw .storage(
                StorageError(.unavailable, "the database \(configuration.databaseLocation) failed", cause: "\(error)")
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
        // Quarantined builds: read before the pipeline is built; refused ones fail the host closed.
        let isolation = configuration.isolation
        let quarantine: QuarantineList
        do {
            quarantine = QuarantineList(try await store.quarantinedPlugins())
        } catch let error as StorageError {
            throw .storage(error)
        } catch {
            throw .storage(StorageError(.unavailable, "reading quarantined plugins failed", cause: "\(error)"))
        }
        let inProcess = plugins.used.filter { $0.isolation == .inProcess }
        if isolation.quarantine == .refuse {
            let refused = inProcess.compactMap { plugin -> BrokenPlugin? in
                guard let entry = quarantine.entry(for: plugin.name, fileHash: plugin.fileHash) else { return nil }
                return BrokenPlugin(
                    file: plugin.file,
                    name: plugin.name,
                    error: PluginLoadError(
                        .quarantined,
                        "it is quarantined: \(entry.reason)",
                        fix: "deploy a fixed build, or clear it with `stephost plugins clear-quarantine \(plugin.name)`"
                    )
                )
            }
            if !refused.isEmpty { throw .brokenPlugins(refused) }
        }
        self.quarantine = quarantine
        stuckSteps = StuckSteps(limit: isolation.maximumStuckThreads)
        // One thread per pass the engine runs at once (each pass runs on it and calls its plugin steps there), and
        // room for the in-process steps that may be stuck past their deadlines before the host stops taking work.
        let executor = BlockingExecutor(
            name: "stephost-step",
            maximumThreads: configuration.engine.workers + isolation.maximumStuckThreads + 1
        )
        let environment = ChildEnvironment(
            executable: configuration.childExecutable,
            logger: logger,
            initTimeout: isolation.initTimeout,
            killGrace: isolation.killGrace
        )
        pipeline = Pipeline(
            IsolatedSteps.steps(
                of: plugins.used,
                isolation: isolation,
                executor: executor,
                stuck: stuckSteps,
                quarantine: quarantine,
                environment: environment
            ) + [CreateRuntimeStep(provisioner: provisioner, clock: clock, answers: store)]
        )
        let store = self.store
        let stuck = stuckSteps
        let inProcessBuilds = Set(inProcess.map { "\($0.name)\u{0}\($0.fileHash)" })
        // Every operation this host runs a pass of records what it ran without: plugins disabled by name (loaded,
        // their steps left out) and files disabled by name (never opened).
        var engineOptions = configuration.engine
        engineOptions.disabledPlugins = Set(
            plugins.disabled.map(\.name) + plugins.catalog.skipped.map { ($0 as NSString).lastPathComponent }
        ).sorted()
        engine = Engine(
            pipeline: pipeline,
            store: store,
            options: engineOptions,
            logger: logger,
            clock: clock,
            passExecutor: executor,
            hostDied: { step, alone in
                // Only a plugin that runs in this process can take the host down; a death while other passes ran
                // too only moves the plugin to a runner (harmless if it was innocent), never refuses it.
                guard let plugin = step.plugin, let hash = step.pluginFileHash,
                    inProcessBuilds.contains("\(plugin)\u{0}\(hash)"), alone || isolation.quarantine == .process
                else { return }
                let record = QuarantineRecord(
                    plugin: plugin,
                    fileHash: hash,
                    reason: "the host died while running its step \(step.step) in process (pass \(step.pass))"
                        + (alone ? "" : "; suspected only: other operations ran at the same time"),
                    since: clock.now
                )
                guard quarantine.add(record) else { return }
                let where_ = isolation.quarantine == .process ? "in a runner process" : "no more"
                logger.error(
                    "plugin quarantined: its steps run \(where_) until its file changes or `stephost plugins clear-quarantine \(plugin)`",
                    metadata: ["plugin": "\(plugin)", "reason": "\(record.reason)"]
                )
                do {
                    try await store.quarantine(record)
                } catch {
                    logger.error(
                        "recording the quarantine failed",
                        metadata: ["plugin": "\(plugin)", "error": "\(error)"]
                    )
                }
            },
            admission: { stuck.refusal },
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
