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
    /// What the failure says about the request, and whether trying again later may help.
    public enum Kind: Sendable, Hashable {
        /// The request certainly had no effect and trying again later may help: the connection could not be
        /// made, or the provisioner answered 408, 429 or 503 (or, for a status query, any network trouble or
        /// a field error it does not call permanent).
        case transient
        /// The request was sent and no answer says what became of it: a timeout, a connection lost after
        /// sending, a 5xx other than 503, an answer that cannot be read. A `provisionRuntime` may have been
        /// accepted.
        case unknown
        /// The provisioner refused the request (GraphQL errors, 4xx); asking again gives the same answer.
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

    /// Whether a repeated `provision` with the same idempotency key is known to return the first request's
    /// operation instead of creating a second runtime. Only then does `create_runtime` send again after an
    /// attempt whose outcome is unknown; otherwise it sends at most once.
    var isIdempotent: Bool { get }

    /// Sends the request; `operationID` is the idempotency key. `create_runtime` calls it at most once per
    /// operation unless ``isIdempotent``.
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
