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

/// A provisioning operation: the fixed fields, the parameters and the custom step fields.
///
/// Who works on the operation is not part of it: claims live beside operations (see `OperationStore`),
/// so taking, renewing or releasing one never changes ``version``.
public struct OperationRecord: Sendable, Hashable {
    public var id: String
    public var instanceID: String
    /// The operation type; `provision` for now.
    public var type: String
    public var state: OperationState
    /// What is happening, for people (for example "waiting for pass 3: verify_monitoring asked to retry").
    public var description: String
    public var createdAt: Date
    public var updatedAt: Date
    /// Incremented by every write of the operation's data; a write with a stale version is refused
    /// (optimistic locking).
    public var version: Int
    /// How many passes have started. A pass runs the pipeline from its first step.
    public var passes: Int
    /// When the next pass is due; `nil` once the operation is final.
    public var nextPassAt: Date?
    /// When the operation fails if it has not ended.
    public var deadline: Date
    /// What `create_runtime` has learned from the provisioner so far.
    public var runtime: RuntimeRecord
    public var lastError: LastError?
    /// The provisioning parameters, validated once when the operation was created.
    public var parameters: ProvisioningParameters
    /// The custom step fields: key (compared as bytes) to JSON value text.
    public var fields: [FieldKey: String]
    /// How many step runs the store dropped from the history (see `StepHistory`), between the first pass
    /// and the most recent ones.
    public var droppedStepRuns: Int
    /// Hosts that died while running a step of this operation, in a row in the same step; `nil` when the last
    /// pass that reached a step's end had no such death.
    public var hostDeaths: HostDeaths?
    /// The plugins that were disabled on a host that ran a pass of this operation (a plugin's name, or the file
    /// name of one never opened), sorted: the steps the operation ran without.
    public var disabledPlugins: [String]

    public init(
        id: String,
        instanceID: String,
        type: String = "provision",
        state: OperationState = .pending,
        description: String,
        createdAt: Date,
        deadline: Date,
        parameters: ProvisioningParameters
    ) {
        self.id = id
        self.instanceID = instanceID
        self.type = type
        self.state = state
        self.description = description
        self.createdAt = createdAt
        self.updatedAt = createdAt
        self.version = 1
        self.passes = 0
        self.nextPassAt = createdAt
        self.deadline = deadline
        self.runtime = RuntimeRecord()
        self.parameters = parameters
        self.fields = [:]
        self.droppedStepRuns = 0
        self.hostDeaths = nil
        self.disabledPlugins = []
    }

    /// Applies what a step wrote: custom fields in the order the step set them, and runtime facts.
    public mutating func apply(_ changes: OperationChanges) {
        for change in changes.fields {
            fields[FieldKey(change.key)] = change.json
        }
        if let runtime = changes.runtime {
            self.runtime = runtime
        }
    }
}

/// What `create_runtime` recorded about the runtime: the provisioner's ids, the request it sent and every
/// attempt to send it.
public struct RuntimeRecord: Sendable, Hashable {
    /// The provisioner's operation id, stored as soon as the request was accepted; while it is set, no
    /// request is sent again.
    public var provisionerOperationID: String?
    /// The runtime's id, once the provisioner named it.
    public var runtimeID: String?
    /// The request that was sent, as JSON with every secret value redacted.
    public var provisioningRequest: String?
    /// Every attempt to send the request, oldest first: each is recorded before it is sent and completed with
    /// its answer, so an attempt whose answer was never recorded is known (see ``ProvisioningAttempt``).
    public var attempts: [ProvisioningAttempt]

    public init(
        provisionerOperationID: String? = nil,
        runtimeID: String? = nil,
        provisioningRequest: String? = nil,
        attempts: [ProvisioningAttempt] = []
    ) {
        self.provisionerOperationID = provisionerOperationID
        self.runtimeID = runtimeID
        self.provisioningRequest = provisioningRequest
        self.attempts = attempts
    }

    /// Every provisioner operation id the provisioner ever returned for this operation, oldest first.
    public var provisionerOperationIDs: [String] {
        var ids: [String] = []
        for id in attempts.compactMap(\.provisionerOperationID) + [provisionerOperationID].compactMap({ $0 })
        where !ids.contains(id) {
            ids.append(id)
        }
        return ids
    }
}

/// One attempt of `create_runtime` to send the provisioning request: recorded (as `sending`) under the host's
/// claim before the request leaves, and completed with what came back.
public struct ProvisioningAttempt: Sendable, Hashable, Codable {
    /// What is known about the attempt.
    public enum Outcome: String, Sendable, Hashable, Codable {
        /// Recorded before sending; no answer was recorded. Found by a later pass, it means the host died or lost
        /// its claim while sending: the request may have been accepted.
        case sending
        /// The provisioner accepted the request (``ProvisioningAttempt/provisionerOperationID`` is set).
        case accepted
        /// The request certainly did not create anything (the connection was refused, or the provisioner answered
        /// 408, 429 or 503): sending again is safe.
        case notAccepted = "not_accepted"
        /// The provisioner refused the request.
        case rejected
        /// No answer (a timeout, a connection lost after sending, an ambiguous 5xx): the request may have been
        /// accepted.
        case unknown
    }

    /// 1 for the first attempt of the operation.
    public var number: Int
    /// The pass that made the attempt.
    public var pass: Int
    /// The `Idempotency-Key` the request carried (the operation id).
    public var idempotencyKey: String
    /// When the attempt was recorded, just before sending.
    public var startedAt: Date
    public var outcome: Outcome
    /// The provisioner's operation id, when it accepted the request.
    public var provisionerOperationID: String?
    /// The runtime id it named, if any.
    public var runtimeID: String?
    /// Why the attempt ended as it did, for people.
    public var message: String?

    public init(
        number: Int,
        pass: Int,
        idempotencyKey: String,
        startedAt: Date,
        outcome: Outcome = .sending,
        provisionerOperationID: String? = nil,
        runtimeID: String? = nil,
        message: String? = nil
    ) {
        self.number = number
        self.pass = pass
        self.idempotencyKey = idempotencyKey
        self.startedAt = startedAt
        self.outcome = outcome
        self.provisionerOperationID = provisionerOperationID
        self.runtimeID = runtimeID
        self.message = message
    }

    /// Whether the request may have created a runtime nobody recorded: the attempt was sent (or being sent) and
    /// no answer says otherwise.
    public var mayHaveBeenAccepted: Bool { outcome == .sending || outcome == .unknown }

    /// The attempts as the stores keep them: a JSON array with dates in milliseconds since 1970.
    public static func json(_ attempts: [ProvisioningAttempt]) throws -> String {
        try StoredJSON.text(attempts)
    }

    /// Reads what ``json(_:)`` wrote.
    public static func attempts(json: String) throws -> [ProvisioningAttempt] {
        try StoredJSON.value([ProvisioningAttempt].self, from: json)
    }
}
