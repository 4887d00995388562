public import Foundation

/// The state of a provisioning operation. `succeeded` and `failed` are final.
public enum OperationState: String, Sendable, Hashable, CaseIterable, Codable {
    case pending
    case inProgress = "in_progress"
    case succeeded
    case failed

    /// Whether the operation has ended.
    public var isFinal: Bool { self == .succeeded || self == .failed }
}

/// Why an operation failed: the step, the plugin that owns it (none for built-in steps) and the message.
public struct LastError: Sendable, Hashable, Codable {
    public var step: String
    public var plugin: String?
    public var message: String

    public init(step: String, plugin: String?, message: String) {
        self.step = step
        self.plugin = plugin
        self.message = message
    }
}

/// A provisioning operation as it is persisted: the fixed fields, the parameters and the custom step fields.
public struct OperationRecord: Sendable, Hashable {
    public var id: String
    public var instanceID: String
    /// The operation type; `provision` for now.
    public var type: String
    public var state: OperationState
    /// What is happening, for people (for example "waiting 30 s before pass 3: verify_monitoring asked to retry").
    public var description: String
    public var createdAt: Date
    public var updatedAt: Date
    /// Incremented by every write; a write with a stale version is refused (optimistic locking).
    public var version: Int
    /// How many passes have started.
    public var attempt: Int
    /// When the next pass is due; `nil` once the operation is final.
    public var nextAttemptAt: Date?
    /// When the operation fails if it has not ended.
    public var deadline: Date
    public var runtimeID: String?
    public var provisionerOperationID: String?
    public var lastError: LastError?
    /// The provisioning parameters, a JSON object.
    public var parameters: String
    /// The custom step fields: key to JSON value text.
    public var fields: [String: String]
    /// The request `create_runtime` sent, as JSON with every secret value redacted.
    public var provisioningRequest: String?
    /// The host process working on the operation, and until when its claim holds.
    public var claimedBy: String?
    public var claimedUntil: Date?

    public init(
        id: String,
        instanceID: String,
        type: String = "provision",
        state: OperationState = .pending,
        description: String,
        createdAt: Date,
        deadline: Date,
        parameters: String
    ) {
        self.id = id
        self.instanceID = instanceID
        self.type = type
        self.state = state
        self.description = description
        self.createdAt = createdAt
        self.updatedAt = createdAt
        self.version = 1
        self.attempt = 0
        self.nextAttemptAt = createdAt
        self.deadline = deadline
        self.parameters = parameters
        self.fields = [:]
    }
}

/// One execution of one step, for the operation's history.
public struct StepRun: Sendable, Hashable {
    /// How a step run ended: `done`, `retry`, `fail` or `fault` (the plugin broke the ABI).
    public var outcome: String
    public var operationID: String
    /// The pass (attempt) it ran in.
    public var pass: Int
    /// Its position in the pipeline, from 1.
    public var position: Int
    public var step: String
    /// The plugin, or `nil` for `create_runtime`.
    public var plugin: String?
    /// SHA-256 of the plugin's file, so the history says which build ran.
    public var pluginFileHash: String?
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
        outcome: String,
        startedAt: Date,
        durationMilliseconds: Double,
        message: String?
    ) {
        self.operationID = operationID
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
