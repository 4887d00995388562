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

    /// Loads `directory` and applies `disabledPlugins`.
    ///
    /// A name that matches a file (`x.so`, `x`, or its path) keeps that file from being opened at all: the way
    /// to skip a plugin that crashes or hangs while it loads. A declared plugin name can only be known by
    /// loading the plugin, so a plugin disabled by that name is loaded, and its steps are left out.
    ///
    /// - Throws: ``PluginDirectoryError`` when the directory itself is missing or untrusted.
    public init(directory: String, disabledPlugins: Set<String>, logger: Logger) throws(PluginDirectoryError) {
        catalog = try PluginLoader(logger: logger).load(directory: directory, skipping: disabledPlugins)
        func isDisabled(name: String?, file: String) -> Bool {
            disabledPlugins.contains(name ?? "") || disabledPlugins.contains(file)
                || disabledPlugins.contains((file as NSString).lastPathComponent)
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
