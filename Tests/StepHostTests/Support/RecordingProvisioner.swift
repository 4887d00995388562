import StepHostRuntime
import Synchronization

/// The real local provisioner, with a count of the calls it got: a second `provision` for one operation
/// is what create_runtime must never do, and the local provisioner itself would hide it (it answers a
/// repeated request with the first one's ids).
final class RecordingProvisioner: ProvisionerBackend {
    private let backend: LocalProvisioner
    private let counts = Mutex((provision: 0, status: 0))
    /// Declared as the test needs; the local provisioner underneath deduplicates either way.
    let isIdempotent: Bool

    init(_ backend: LocalProvisioner, idempotent: Bool = false) {
        self.backend = backend
        self.isIdempotent = idempotent
    }

    var pollInterval: Duration { backend.pollInterval }
    var provisionCalls: Int { counts.withLock { $0.provision } }
    var statusCalls: Int { counts.withLock { $0.status } }

    func provision(
        _ request: ProvisioningRequest,
        operationID: String
    ) async throws(ProvisionerError)
        -> ProvisionerOperation
    {
        counts.withLock { $0.provision += 1 }
        return try await backend.provision(request, operationID: operationID)
    }

    func status(
        provisionerOperationID: String,
        operationID: String
    ) async throws(ProvisionerError)
        -> ProvisionerOperation
    {
        counts.withLock { $0.status += 1 }
        return try await backend.status(provisionerOperationID: provisionerOperationID, operationID: operationID)
    }
}
