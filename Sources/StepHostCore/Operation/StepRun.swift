public import Foundation

/// One execution of one step, for the operation's history.
public struct StepRun: Sendable, Hashable {
    public var operationID: String
    /// The pass it ran in, from 1.
    public var pass: Int
    /// Its position in the pipeline, from 1.
    public var position: Int
    public var step: String
    /// The plugin, or `nil` for a built-in step.
    public var plugin: String?
    /// SHA-256 of the plugin's file, so the history says which build ran.
    public var pluginFileHash: String?
    /// The version the plugin declared, beside its file's hash: the build by name as well as by bytes.
    public var pluginVersion: String?
    /// How the run ended.
    public var outcome: StepOutcome.Kind
    public var startedAt: Date
    public var durationMilliseconds: Double
    /// The failure, fault or retry message, with secret values removed.
    public var message: String?

    public init(
        operationID: String,
        pass: Int,
        position: Int,
        step: String,
        plugin: String?,
        pluginFileHash: String?,
        outcome: StepOutcome.Kind,
        startedAt: Date,
        durationMilliseconds: Double,
        message: String?,
        pluginVersion: String? = nil
    ) {
        self.operationID = operationID
        self.pluginVersion = pluginVersion
        self.pass = pass
        self.position = position
        self.step = step
        self.plugin = plugin
        self.pluginFileHash = pluginFileHash
        self.outcome = outcome
        self.startedAt = startedAt
        self.durationMilliseconds = durationMilliseconds
        self.message = message
    }
}
