import Foundation
public import Logging
public import StepHostCore
public import StepHostPipeline
public import StepHostStorage
import Synchronization

/// Runs provisioning operations through the pipeline and owns their final state.
///
/// A pass runs every step in order. `done` goes on; `retry` ends the pass and parks the operation
/// until its next pass is due (persisted, so it survives a restart; nothing sleeps meanwhile); `fail`
/// or a fault ends it `failed` with the step and plugin named; after the last step it is `succeeded`.
/// An operation that is still retrying at its deadline fails.
///
/// The engine knows steps only through the ``Step`` protocol and storage only through
/// ``OperationStore``; every time it persists comes from its ``HostClock``.
public final class Engine: Sendable {
    let pipeline: Pipeline
    let store: any OperationStore
    let options: EngineOptions
    let logger: Logger
    let events: @Sendable (EngineEvent) -> Void
    let owner: ClaimOwner
    let clock: any HostClock
    /// Where passes run (each pass task prefers it); `nil` for the global executor. The host passes the executor
    /// its plugin steps block on, so a pass calls its steps without a thread hop per step.
    let passExecutor: (any TaskExecutor)?
    /// The store's way to record a running step without a database write, if it has one.
    let runningRecorder: (any RunningStepRecorder)?
    /// Told when a pass finds that a host died in one of its operation's steps (`alone`: the death was that
    /// operation's own, not one suspected while other passes ran too), before the pass runs any step.
    let hostDied: @Sendable (_ step: RunningStep, _ alone: Bool) async -> Void
    /// Why the host must take no new work now, or `nil`; asked before every claim.
    let admission: @Sendable () -> String?
    /// Set by ``beginShutdown()``: no new claims, and each running pass ends after its current step.
    let stopping = Atomic<Bool>(false)
    /// Wakes ``serve()`` when an operation was created or the host shuts down.
    let wakeup = Wakeup()
    /// The operations this host runs a pass of now, so a shutdown whose grace period ran out can release them.
    let active = Mutex<Set<String>>([])
    /// Operations whose pass ``serve()`` gave up because the database could not be reached, and whose claims this
    /// host may still hold: released as soon as the database answers again, so they run at once instead of after
    /// their leases.
    let abandonedClaims = Mutex<Set<String>>([])

    public init(
        pipeline: Pipeline,
        store: any OperationStore,
        options: EngineOptions = EngineOptions(),
        logger: Logger,
        owner: ClaimOwner = .current,
        clock: any HostClock = SystemClock(),
        passExecutor: (any TaskExecutor)? = nil,
        hostDied: @escaping @Sendable (_ step: RunningStep, _ alone: Bool) async -> Void = { _, _ in },
        admission: @escaping @Sendable () -> String? = { nil },
        events: @escaping @Sendable (EngineEvent) -> Void = { _ in }
    ) {
        self.passExecutor = passExecutor
        self.hostDied = hostDied
        self.admission = admission
        runningRecorder = store as? any RunningStepRecorder
        self.pipeline = pipeline
        self.store = store
        self.options = options
        self.logger = logger
        self.owner = owner
        self.clock = clock
        self.events = events
    }

    /// Asks the engine to take no new work: ``serve()``, ``runUntilIdle(only:)`` and ``runDue(only:)`` claim
    /// nothing more, and each running pass ends after the step it runs now, parked due at once and its claim
    /// released, so the next start resumes it without waiting for a lease. They return once those passes ended.
    public func beginShutdown() {
        stopping.store(true, ordering: .releasing)
        wakeup.poke()
    }

    /// Whether ``beginShutdown()`` was called.
    public var isShuttingDown: Bool { stopping.load(ordering: .acquiring) }

    /// How many passes this host runs now.
    public var busyWorkers: Int { active.withLock { $0.count } }

    /// Releases the claims of the passes still running (a shutdown whose grace period ran out, just before the
    /// process exits): the next start takes those operations at once instead of after their leases. Their steps
    /// may still be running; whatever they would write later is refused, as for any host that lost its claim.
    ///
    /// - Returns: the ids of the operations released.
    @discardableResult
    public func releaseRunningClaims() async -> [String] {
        let ids = active.withLock { Array($0) }.sorted()
        for id in ids {
            do {
                try await store.releaseClaim(operationID: id, owner: owner)
            } catch {
                logger.error("releasing the claim failed", metadata: ["operation": "\(id)", "error": "\(error)"])
            }
        }
        return ids
    }

    /// Tells ``serve()`` that an operation may be due now (one was just created).
    public func wake() { wakeup.poke() }

    /// A new pending operation for `parameters`, due now, with the engine's deadline; not stored yet.
    public func newOperation(parameters: ProvisioningParameters, instanceID: String? = nil) -> OperationRecord {
        let now = clock.now
        return OperationRecord(
            id: UUID.random().uuidString.lowercased(),
            instanceID: instanceID ?? UUID.random().uuidString.lowercased(),
            description: "waiting for its first pass",
            createdAt: now,
            deadline: now.addingTimeInterval(options.deadline.timeInterval),
            parameters: parameters
        )
    }

    /// Stores a new pending operation for `parameters`, due now.
    ///
    /// - Throws: a ``StorageError``; nothing is written then.
    public func createOperation(
        parameters: ProvisioningParameters,
        instanceID: String? = nil
    ) async throws -> OperationRecord {
        let operation = newOperation(parameters: parameters, instanceID: instanceID)
        try await store.create(operation)
        logger.info(
            "created operation",
            metadata: ["operation": "\(operation.id)", "instance": "\(operation.instanceID)"]
        )
        return operation
    }
}
