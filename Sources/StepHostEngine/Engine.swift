public import Foundation
public import Logging
public import StepHostPipeline
public import StepHostRuntime
public import StepHostStorage

/// Runs provisioning operations through the pipeline and owns their final state.
///
/// A pass runs every step in order. `done` goes on; `retry` ends the pass and parks the operation
/// until its next attempt is due (persisted, so it survives a restart; nothing sleeps meanwhile); `fail`
/// or a plugin fault ends it `failed` with the step and plugin named; after the last step it is
/// `succeeded`. An operation that is still retrying at its deadline fails.
public final class Engine: Sendable {
    let pipeline: Pipeline
    let store: any OperationStore
    let provisioner: any ProvisionerBackend
    let options: EngineOptions
    let logger: Logger
    let events: @Sendable (EngineEvent) -> Void
    let executor: BlockingExecutor
    let owner: ClaimOwner

    public init(
        pipeline: Pipeline,
        store: any OperationStore,
        provisioner: any ProvisionerBackend,
        options: EngineOptions = EngineOptions(),
        logger: Logger,
        owner: ClaimOwner = .current,
        events: @escaping @Sendable (EngineEvent) -> Void = { _ in }
    ) {
        self.pipeline = pipeline
        self.store = store
        self.provisioner = provisioner
        self.options = options
        self.logger = logger
        self.owner = owner
        self.events = events
        self.executor = BlockingExecutor(name: "stephost-step", maximumThreads: options.workers)
    }

    /// Validates `parameters` and stores a new pending operation, due now.
    ///
    /// - Throws: ``ParametersError`` for parameters that are not a JSON object of valid values (nothing is
    ///   written), or a ``StorageError``.
    public func createOperation(
        parameters: String,
        instanceID: String? = nil,
        now: Date = Date()
    ) async throws
        -> OperationRecord
    {
        _ = try ProvisioningParameters(json: parameters)
        let compact = try JSONText.compact(JSONSerialization.jsonObject(with: Data(parameters.utf8)))
        let operation = OperationRecord(
            id: UUID().uuidString.lowercased(),
            instanceID: instanceID ?? UUID().uuidString.lowercased(),
            description: "waiting for its first pass",
            createdAt: now,
            deadline: now.addingTimeInterval(options.deadline.timeInterval),
            parameters: compact
        )
        try await store.create(operation)
        logger.info(
            "created operation",
            metadata: ["operation": "\(operation.id)", "instance": "\(operation.instanceID)"]
        )
        return operation
    }
}

func milliseconds(_ interval: TimeInterval) -> Double {
    (interval * 1000 * 1000).rounded() / 1000
}
