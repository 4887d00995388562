public import Foundation

/// Where operations live: SQLite for one host, later PostgreSQL for several.
///
/// Every write is optimistic: it names the version it read and fails with ``StorageError/Code/conflict``
/// if someone else wrote since, so nothing is ever silently overwritten.
public protocol OperationStore: Sendable {
    /// Stores a new operation.
    func create(_ operation: OperationRecord) async throws

    /// The operation with `id`, or `nil`.
    func operation(id: String) async throws -> OperationRecord?

    /// Operations, newest first, optionally only those in `state`.
    func operations(state: OperationState?) async throws -> [OperationRecord]

    /// Writes `operation` if the stored version is still `operation.version`, and appends `stepRuns` in the
    /// same transaction. Returns the operation with its new version.
    func save(_ operation: OperationRecord, stepRuns: [StepRun]) async throws -> OperationRecord

    /// The step history of an operation, in order.
    func stepRuns(operationID: String) async throws -> [StepRun]

    /// Claims up to `limit` unfinished operations that are due at `now` and not held by a live host,
    /// for `owner` until `now + lease`. With `id`, considers only that operation.
    func claimDue(
        now: Date,
        owner: ClaimOwner,
        lease: Duration,
        limit: Int,
        id: String?
    ) async throws
        -> [OperationRecord]

    /// When the earliest unfinished operation (or only `id`) is next due, or `nil` if none is unfinished.
    func nextDue(id: String?) async throws -> Date?

    /// Records a request the local provisioner received. Keyed by operation id: a second request for the
    /// same operation returns the first one's ids instead of recording again.
    func recordLocalProvisioning(
        operationID: String,
        request: String,
        provisionerOperationID: String,
        runtimeID: String,
        at: Date
    ) async throws -> (provisionerOperationID: String, runtimeID: String)

    /// How many requests the local provisioner recorded for an operation.
    func localProvisioningCount(operationID: String) async throws -> Int
}
