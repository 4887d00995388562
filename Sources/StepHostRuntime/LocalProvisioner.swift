import Foundation
import StepHostCore
public import StepHostStorage

/// The embedded provisioner: records each request in the database, with every secret value redacted,
/// and reports the runtime ready at once. For trying stephost and for steps that need no real cluster.
public struct LocalProvisioner: ProvisionerBackend {
    private let records: any LocalProvisioningRecords
    public let pollInterval: Duration = .seconds(1)
    /// Its records are keyed by operation id: a repeated request gets the first one's ids.
    public let isIdempotent = true

    public init(records: any LocalProvisioningRecords) {
        self.records = records
    }

    public func provision(
        _ request: ProvisioningRequest,
        operationID: String
    ) async throws(ProvisionerError)
        -> ProvisionerOperation
    {
        do {
            // Keyed by operation id: a second request for the same operation gets the first one's ids.
            let recorded = try await records.recordLocalProvisioning(
                operationID: operationID,
                request: try request.redacted.json(),
                provisionerOperationID: "local-\(UUID.random().uuidString.lowercased())",
                runtimeID: UUID.random().uuidString.lowercased(),
                at: Date()
            )
            return ProvisionerOperation(
                id: recorded.provisionerOperationID,
                runtimeID: recorded.runtimeID,
                state: .succeeded,
                message: "recorded by the local provisioner"
            )
        } catch {
            throw ProvisionerError(.transient, "the local provisioner could not record the request: \(error)")
        }
    }

    public func status(
        provisionerOperationID: String,
        operationID: String
    ) async throws(ProvisionerError)
        -> ProvisionerOperation
    {
        ProvisionerOperation(id: provisionerOperationID, runtimeID: nil, state: .succeeded, message: nil)
    }
}
