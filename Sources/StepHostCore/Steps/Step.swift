/// A step of the provisioning pipeline: a plugin's step run in process through the C ABI, or a built-in
/// step such as `create_runtime`. The engine knows steps only through this protocol.
///
/// A step may run again for the same operation (every retry repeats the whole pipeline), so it must be
/// idempotent: whatever it must remember across passes it writes into the operation's custom fields.
///
/// ## Implementation requirements
/// `run` reports everything through its ``StepResult``; it never throws and never changes the operation
/// itself. It may persist changes before it returns through ``StepContext/checkpoint``. It may block
/// only if it moves the blocking work off Swift's cooperative pool (plugin steps run on threads of their own).
public protocol Step: Sendable {
    /// The step's name, weight and origin.
    var identity: StepIdentity { get }

    /// Runs the step once for `operation`.
    func run(_ operation: OperationRecord, context: StepContext) async -> StepResult
}

/// What identifies a step and orders it in the pipeline.
public struct StepIdentity: Sendable, Hashable {
    /// Unique across the pipeline.
    public var name: String
    /// Steps run by weight; `create_runtime` is 100.
    public var weight: Int
    /// Where the step comes from.
    public var provenance: StepProvenance

    public init(name: String, weight: Int, provenance: StepProvenance) {
        self.name = name
        self.weight = weight
        self.provenance = provenance
    }

    /// The plugin that declares the step, or `nil` for a built-in step.
    public var plugin: PluginProvenance? {
        if case .plugin(let plugin) = provenance { return plugin }
        return nil
    }
}

/// Where a step comes from.
public enum StepProvenance: Sendable, Hashable {
    /// Built into the host.
    case builtIn
    /// Declared by a plugin.
    case plugin(PluginProvenance)
}

/// The plugin a step comes from: which build of which plugin, and where the step stands in its list.
public struct PluginProvenance: Sendable, Hashable {
    /// The plugin's declared name.
    public var name: String
    /// The plugin's declared version.
    public var version: String
    /// The file it was loaded from.
    public var file: String
    /// SHA-256 of the file, in hex.
    public var fileHash: String
    /// The step's position in the plugin's own list, for ordering equal weights.
    public var stepIndex: Int

    public init(name: String, version: String, file: String, fileHash: String, stepIndex: Int) {
        self.name = name
        self.version = version
        self.file = file
        self.fileHash = fileHash
        self.stepIndex = stepIndex
    }
}

/// What the engine lends a step for one run.
public struct StepContext: Sendable {
    /// What the steps before this one contributed in this pass (overrides and labels).
    public var input: InputCreator
    /// The pass this run belongs to, from 1.
    public var pass: Int
    /// Log lines below this level are not wanted: a step may drop them at once.
    public var minimumLogLevel: StepLogLevel
    private let persist: @Sendable (OperationChanges) async throws -> OperationRecord
    private let write: @Sendable (StepLogLine, [String]) -> Void

    /// - Parameters:
    ///   - checkpoint: persists the changes the step made so far (all of them, from the start of the run) and
    ///     returns the operation as stored.
    ///   - log: writes one of the step's log lines now, with the secret values the step declared so far.
    public init(
        input: InputCreator,
        pass: Int,
        minimumLogLevel: StepLogLevel = .debug,
        checkpoint: @escaping @Sendable (OperationChanges) async throws -> OperationRecord,
        log: @escaping @Sendable (StepLogLine, _ declaredSecrets: [String]) -> Void = { _, _ in }
    ) {
        self.input = input
        self.pass = pass
        self.minimumLogLevel = minimumLogLevel
        self.persist = checkpoint
        self.write = log
    }

    /// Writes a log line of the step now, as it happens, instead of with the step's result; secret values
    /// (the pass's and `declaredSecrets`) are removed first.
    public func log(_ line: StepLogLine, declaredSecrets: [String]) {
        write(line, declaredSecrets)
    }

    /// Persists the changes the step made since the run began, now, before the step returns.
    ///
    /// - Throws: when they cannot be persisted (another writer changed the operation, this host lost its
    ///   claim, the store failed); the step must then not go on as if they were safe.
    @discardableResult
    public func checkpoint(_ changes: OperationChanges) async throws -> OperationRecord {
        try await persist(changes)
    }
}
