/// Where a plugin's steps run.
public enum Isolation: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// In the host's own process, through the C ABI: the fastest, for trusted plugins. A crash of the plugin
    /// takes the host down, a step that never returns holds a thread.
    case inProcess = "in-process"
    /// In a runner child process of its own, the same ABI served over a pipe: a crash or a hang ends only
    /// that step.
    case process

    public var description: String { rawValue }
}

/// Resource limits for a plugin's runner process (`setrlimit`). `nil` leaves a limit as the host has it.
public struct ResourceLimits: Sendable, Hashable {
    /// Address space in bytes (RLIMIT_AS).
    public var addressSpace: UInt64?
    /// CPU time in seconds (RLIMIT_CPU), over the life of one runner.
    public var cpuSeconds: UInt64?
    /// Open file descriptors (RLIMIT_NOFILE).
    public var openFiles: UInt64?

    public init(addressSpace: UInt64? = nil, cpuSeconds: UInt64? = nil, openFiles: UInt64? = nil) {
        self.addressSpace = addressSpace
        self.cpuSeconds = cpuSeconds
        self.openFiles = openFiles
    }

    /// Limits that protect the machine from one runaway plugin: 4 GiB of address space, one hour of CPU per
    /// runner (a runner that reaches it is restarted for the next call), 256 open files.
    public static let defaults = ResourceLimits(addressSpace: 4 << 30, cpuSeconds: 3600, openFiles: 256)

    /// These limits, with the ones `other` sets replacing them.
    public func overridden(by other: ResourceLimits) -> ResourceLimits {
        ResourceLimits(
            addressSpace: other.addressSpace ?? addressSpace,
            cpuSeconds: other.cpuSeconds ?? cpuSeconds,
            openFiles: other.openFiles ?? openFiles
        )
    }
}

/// How one plugin runs: its isolation, its step deadline and its runner's limits.
public struct PluginPolicy: Sendable, Hashable {
    public var isolation: Isolation
    /// How long one run of one of its steps may take.
    public var deadline: Duration
    /// Limits of its runner process (`process` isolation).
    public var limits: ResourceLimits
    /// Whether the operator disabled it: its steps are left out of the pipeline.
    public var disabled: Bool

    public init(
        isolation: Isolation = .inProcess,
        deadline: Duration = .seconds(600),
        limits: ResourceLimits = .defaults,
        disabled: Bool = false
    ) {
        self.isolation = isolation
        self.deadline = deadline
        self.limits = limits
        self.disabled = disabled
    }
}

/// What one plugin's configuration sets; `nil` keeps the default.
public struct PluginPolicyOverride: Sendable, Hashable {
    public var isolation: Isolation?
    public var deadline: Duration?
    public var limits: ResourceLimits
    public var disabled: Bool?

    public init(
        isolation: Isolation? = nil,
        deadline: Duration? = nil,
        limits: ResourceLimits = ResourceLimits(),
        disabled: Bool? = nil
    ) {
        self.isolation = isolation
        self.deadline = deadline
        self.limits = limits
        self.disabled = disabled
    }
}

/// What happens to a plugin whose in-process step killed the host.
public enum QuarantineAction: String, Sendable, Hashable, CaseIterable {
    /// Its steps run in `process` isolation from then on.
    case process
    /// The plugin is refused: reported broken (the host fails closed) until it is cleared or its file changes.
    case refuse
}

/// The isolation settings of a host: the defaults, each plugin's own, and what quarantine does.
public struct IsolationConfiguration: Sendable, Hashable {
    /// The policy of a plugin that has no settings of its own.
    public var defaults: PluginPolicy
    /// Per plugin, by plugin name or file name (`x.so`).
    public var plugins: [String: PluginPolicyOverride]
    public var quarantine: QuarantineAction
    /// How many in-process steps may be stuck past their deadline (their threads cannot be stopped) before the
    /// host stops taking new work.
    public var maximumStuckThreads: Int
    /// How long a plugin's `stephost_plugin_init` may take in the scanner before it is reported hung.
    public var initTimeout: Duration
    /// After a deadline, how long a runner has between SIGTERM and SIGKILL.
    public var killGrace: Duration

    public init(
        defaults: PluginPolicy = PluginPolicy(),
        plugins: [String: PluginPolicyOverride] = [:],
        quarantine: QuarantineAction = .process,
        maximumStuckThreads: Int = 4,
        initTimeout: Duration = .seconds(10),
        killGrace: Duration = .seconds(2)
    ) {
        self.defaults = defaults
        self.plugins = plugins
        self.quarantine = quarantine
        self.maximumStuckThreads = maximumStuckThreads
        self.initTimeout = initTimeout
        self.killGrace = killGrace
    }

    /// The policy of the plugin named `name` loaded from the file named `fileName`: its settings by name, then
    /// by file name, over the defaults.
    public func policy(name: String?, fileName: String) -> PluginPolicy {
        var policy = defaults
        for key in [fileName, name].compactMap({ $0 }) {
            guard let override = plugins[key] else { continue }
            if let isolation = override.isolation { policy.isolation = isolation }
            if let deadline = override.deadline { policy.deadline = deadline }
            policy.limits = policy.limits.overridden(by: override.limits)
            if let disabled = override.disabled { policy.disabled = disabled }
        }
        return policy
    }
}
