import StepHostABI
public import StepHostCore

/// A plugin that passed every check, with its steps in the order it declared them.
public struct LoadedPlugin: Sendable {
    /// The plugin's declared name.
    public var name: String
    /// The plugin's declared version.
    public var version: String
    /// The file it was loaded from.
    public var file: String
    /// SHA-256 of the file, in hex.
    public var fileHash: String
    /// The ABI version it chose, as major.minor.
    public var abiVersion: ABIVersion
    /// Its steps, in declaration order.
    public var steps: [PluginStep]
    /// Where its steps run: `inProcess` plugins are mapped into this process, `process` ones only into their
    /// runners (their steps have no entry here).
    public var isolation: Isolation = .inProcess
    /// The sealed in-memory copy of its file that was checked and hashed: what this process mapped, and what a
    /// runner child maps. -1 when there is none.
    var sealedCopy: Int32 = -1
}

/// One step of a loaded plugin: its identity and the plugin's C function for it.
///
/// ``call(operationJSON:checkpoint:)`` calls it on the current thread; ``InProcessStep`` runs it as a
/// pipeline step on threads of its own.
public struct PluginStep: Sendable {
    /// The step's name, weight and plugin.
    public let identity: StepIdentity
    /// The plugin that declares the step.
    public let plugin: PluginProvenance

    /// `nil` when the plugin is not loaded in this process (it runs in a runner child).
    let entry: Entry?

    /// The plugin's C function and context for this step.
    struct Entry: @unchecked Sendable {
        // Unchecked: both are owned by a plugin that is never unloaded, and the host never writes them.
        // The ABI lets `run` be called from any thread.
        let run: stephost_step_run_fn
        let context: UnsafeMutableRawPointer?
    }

    init(name: String, weight: Int, plugin: PluginProvenance, entry: Entry?) {
        self.identity = StepIdentity(name: name, weight: weight, provenance: .plugin(plugin))
        self.plugin = plugin
        self.entry = entry
    }

    /// The step's name, unique across all plugins.
    public var name: String { identity.name }
    /// The step's weight: below 100 runs before `create_runtime`, above after it.
    public var weight: Int { identity.weight }
}

/// A packed ABI version (`STEPHOST_ABI_VERSION`: major in the high 16 bits, minor in the low 16), printed
/// as major.minor.
public struct ABIVersion: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var packed: UInt32

    public init(packed: UInt32) { self.packed = packed }

    public init(major: Int, minor: Int) {
        packed = stephost_abi_version(UInt32(truncatingIfNeeded: major), UInt32(truncatingIfNeeded: minor))
    }

    public var major: Int { Int(stephost_abi_major(packed)) }
    public var minor: Int { Int(stephost_abi_minor(packed)) }
    public var description: String { "\(major).\(minor)" }

    public static func < (lhs: ABIVersion, rhs: ABIVersion) -> Bool { lhs.packed < rhs.packed }

    /// The version this host was built with, from `stephost.h`.
    public static let current = ABIVersion(
        major: Int(STEPHOST_ABI_CURRENT_MAJOR),
        minor: Int(STEPHOST_ABI_CURRENT_MINOR)
    )
}

/// What loading a plugin directory produced: the plugins that passed and the ones that did not.
public struct PluginCatalog: Sendable {
    /// The directory, resolved to its real path.
    public var directory: String
    /// Plugins that passed every check, sorted by name.
    public var plugins: [LoadedPlugin]
    /// Plugins that failed a check, sorted by file.
    public var broken: [BrokenPlugin]
    /// Files that were disabled by name and never opened, sorted.
    public var skipped: [String]

    public init(directory: String, plugins: [LoadedPlugin], broken: [BrokenPlugin], skipped: [String] = []) {
        self.directory = directory
        self.plugins = plugins
        self.broken = broken
        self.skipped = skipped
    }
}
