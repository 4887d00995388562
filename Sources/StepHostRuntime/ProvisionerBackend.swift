/// The Runtime Provisioner's view of one provisioning: its operation id, the runtime and the state.
public struct ProvisionerOperation: Sendable, Hashable {
    /// `Pending`, `InProgress`, `Succeeded` or `Failed`, as the provisioner's `OperationState` enum.
    public enum State: String, Sendable, Hashable {
        case pending = "Pending"
        case inProgress = "InProgress"
        case succeeded = "Succeeded"
        case failed = "Failed"
    }

    public var id: String
    public var runtimeID: String?
    public var state: State
    public var message: String?

    public init(id: String, runtimeID: String?, state: State, message: String?) {
        self.id = id
        self.runtimeID = runtimeID
        self.state = state
        self.message = message
    }
}

/// Why a provisioner call did not give an answer.
public struct ProvisionerError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Whether trying again later may help.
    public enum Kind: Sendable, Hashable {
        /// The network failed or the provisioner answered 5xx, 408 or 429: the pass is retried.
        case transient
        /// The provisioner refused the request (GraphQL errors, 4xx): the operation fails.
        case rejected
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}

/// Where `create_runtime` sends its request and asks how provisioning goes.
public protocol ProvisionerBackend: Sendable {
    /// How long to wait before asking again while provisioning is in progress.
    var pollInterval: Duration { get }

    /// Sends the request once; `operationID` is the idempotency key, so a repeated call (after a lost
    /// answer) does not provision twice.
    func provision(
        _ request: ProvisioningRequest,
        operationID: String
    ) async throws(ProvisionerError)
        -> ProvisionerOperation

    /// Asks how the provisioning with `provisionerOperationID` goes.
    func status(
        provisionerOperationID: String,
        operationID: String
    ) async throws(ProvisionerError)
        -> ProvisionerOperation
}
