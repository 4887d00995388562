import Foundation
public import Logging
public import StepHostCore
public import StepHostLoader
import StepHostPipeline
import StepHostRuntime

/// The plugins of a directory after the disable policy: those the pipeline uses, those skipped knowingly,
/// and those broken.
public struct PluginSelection: Sendable {
    /// Everything the loader found.
    public let catalog: PluginCatalog
    /// Plugins that loaded and are not disabled: their steps form the pipeline.
    public let used: [LoadedPlugin]
    /// Plugins that loaded but were disabled.
    public let disabled: [LoadedPlugin]
    /// Broken plugins that were not disabled: while there are any, no operation runs.
    public let broken: [BrokenPlugin]
    /// The isolation settings the plugins were loaded with.
    public let isolation: IsolationConfiguration

    /// The policy of a loaded plugin (its isolation, deadline and runner limits).
    public func policy(of plugin: LoadedPlugin) -> PluginPolicy {
        var policy = isolation.policy(name: plugin.name, fileName: (plugin.file as NSString).lastPathComponent)
        policy.isolation = plugin.isolation
        return policy
    }

    /// Loads `directory` and applies `disabledPlugins`.
    ///
    /// A name that matches a file (`x.so`, `x`, or its path) keeps that file from being opened at all: the way
    /// to skip a plugin that crashes or hangs while it loads. A declared plugin name can only be known by
    /// loading the plugin, so a plugin disabled by that name is loaded, and its steps are left out.
    ///
    /// - Throws: ``PluginDirectoryError`` when the directory itself is missing or untrusted.
    ///
    /// Every plugin is loaded first by the scanner child (``PluginLoader/load(directory:skipping:scanning:cache:isolation:)``):
    /// one that crashes, exits or hangs while it loads is reported broken, and the host goes on.
    public init(
        directory: String,
        disabledPlugins: Set<String>,
        isolation: IsolationConfiguration = IsolationConfiguration(),
        childExecutable: String = ChildEnvironment.defaultExecutable,
        scanCache: Bool = true,
        logger: Logger
    ) throws(PluginDirectoryError) {
        self.isolation = isolation
        let environment = ChildEnvironment(
            executable: childExecutable,
            logger: logger,
            initTimeout: isolation.initTimeout,
            killGrace: isolation.killGrace
        )
        // Disabled by file in the configuration: never opened, like a name given to --disable-plugin.
        let disabledFiles = isolation.plugins.filter { $0.value.disabled == true }.map(\.key)
        catalog = try PluginLoader(logger: logger).load(
            directory: directory,
            skipping: disabledPlugins.union(disabledFiles),
            scanning: environment,
            cache: scanCache,
            isolation: { name, fileName in isolation.policy(name: name, fileName: fileName).isolation }
        )
        func isDisabled(name: String?, file: String) -> Bool {
            let fileName = (file as NSString).lastPathComponent
            return disabledPlugins.contains(name ?? "") || disabledPlugins.contains(file)
                || disabledPlugins.contains(fileName) || isolation.policy(name: name, fileName: fileName).disabled
        }
        used = catalog.plugins.filter { !isDisabled(name: $0.name, file: $0.file) }
        disabled = catalog.plugins.filter { isDisabled(name: $0.name, file: $0.file) }
        broken = catalog.broken.filter { !isDisabled(name: $0.name, file: $0.file) }
        for plugin in disabled {
            logger.warning("plugin disabled", metadata: ["plugin": "\(plugin.name)", "file": "\(plugin.file)"])
        }
    }

    /// The steps the pipeline will run, in order, built-in steps included; for showing the pipeline without
    /// building it.
    public var order: [StepIdentity] {
        Pipeline.order(used.flatMap(\.steps).map(\.identity) + ProvisioningHost.builtInSteps)
    }
}
