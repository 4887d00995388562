import Foundation
import StepHostCore
import StepHostStorage
import Synchronization
import Testing

/// An operation store in memory, for fast engine tests. `StoreConformanceTests` runs the same suite
/// against it and the SQLite store, so it cannot drift from the real one's semantics.
actor InMemoryOperationStore: OperationStore, LocalProvisioningRecords, ProvisionerAnswerLog {
    private var operations: [String: OperationRecord] = [:]
    private var claims: [String: Claim] = [:]
    /// The next saves of these operations fail with the error, as a database would (engine tests of failure
    /// handling): the error and how many saves are left to fail.
    private var failingSaves: [String: (StorageError, Int)] = [:]

    private var answers: [String: [ProvisioningAttempt]] = [:]

    func recordProvisionerAnswer(
        operationID: String,
        attempt: Int,
        provisionerOperationID: String,
        runtimeID: String?,
        at date: Date
    ) throws {
        answers[operationID, default: []].append(
            ProvisioningAttempt(
                number: attempt,
                pass: 0,
                idempotencyKey: operationID,
                startedAt: Self.milliseconds(date),
                outcome: .accepted,
                provisionerOperationID: provisionerOperationID,
                runtimeID: runtimeID,
                message: "answer recorded apart: the operation could not take it"
            )
        )
    }

    func provisionerAnswers(operationID: String) throws -> [ProvisioningAttempt] { answers[operationID] ?? [] }

    func failSaves(of id: String, with error: StorageError, times: Int = 1) { failingSaves[id] = (error, times) }
    private var runs: [StepRun] = []
    private var local: [String: (provisionerOperationID: String, runtimeID: String)] = [:]

    func create(_ operation: OperationRecord) throws {
        guard operations[operation.id] == nil else {
            throw StorageError(.unavailable, "operation \(operation.id) exists already")
        }
        operations[operation.id] = Self.stored(operation)
    }

    func operation(id: String) throws -> OperationRecord? { operations[id] }

    /// Everything it holds can be read: it keeps values, not encodings.
    /// How often the whole listing was read: the engine must not read it to run a queue (a long queue would be
    /// loaded whole); it reads ids and states.
    private(set) var listings = 0
    /// What ``lastOutage`` reports: an in-memory store is never away, so a test says when it was.
    nonisolated let outage = Mutex<DatabaseOutage?>(nil)
    nonisolated var lastOutage: DatabaseOutage? { outage.withLock { $0 } }

    func unfinishedOperationIDs() -> [String] {
        operations.values.filter { !$0.state.isFinal }.sorted { ($0.createdAt, $0.id) < ($1.createdAt, $1.id) }
            .map(\.id)
    }

    func operationStates(ids: [String]) -> [String: OperationState] {
        ids.reduce(into: [:]) { states, id in states[id] = operations[id]?.state }
    }

    func operations(state: OperationState?) throws -> OperationListing {
        listings += 1
        return OperationListing(
            operations: operations.values.filter { state == nil || $0.state == state }.sorted {
                $0.createdAt != $1.createdAt ? $0.createdAt > $1.createdAt : $0.id < $1.id
            }
        )
    }

    func save(
        _ operation: OperationRecord,
        stepRuns: [StepRun],
        claim: ClaimOwner?,
        releasingClaim: Bool,
        durable: Bool
    ) throws -> OperationRecord {
        if let (failure, left) = failingSaves[operation.id], left > 0 {
            failingSaves[operation.id] = (failure, left - 1)
            throw failure
        }
        if let claim, claims[operation.id]?.owner != claim {
            throw StorageError.claimLost(
                operationID: operation.id,
                owner: claim,
                holder: claims[operation.id]?.owner.description
            )
        }
        guard let stored = operations[operation.id] else { throw StorageError.missing(operation.id) }
        guard stored.version == operation.version else {
            throw StorageError.conflict(operation.id, stored: stored.version, basedOn: operation.version)
        }
        var saved = Self.stored(operation)
        saved.version += 1
        operations[operation.id] = saved
        runs += stepRuns.map { run in
            var run = run
            run.startedAt = Self.milliseconds(run.startedAt)
            return run
        }
        if let latest = stepRuns.map(\.pass).max(), latest - StepHistory.keptPasses > 1 {
            let before = runs.count
            runs.removeAll {
                $0.operationID == operation.id && $0.pass > 1 && $0.pass <= latest - StepHistory.keptPasses
            }
            saved.droppedStepRuns += before - runs.count
            operations[operation.id] = saved
        }
        if releasingClaim, let claim, claims[operation.id]?.owner == claim { claims[operation.id] = nil }
        return saved
    }

    func stepRuns(operationID: String) throws -> [StepRun] { runs.filter { $0.operationID == operationID } }

    func claimDue(now: Date, owner: ClaimOwner, lease: Duration, limit: Int, id: String?) throws -> [ClaimedOperation] {
        let due = operations.values.filter {
            !$0.state.isFinal && ($0.nextPassAt.map { Self.milliseconds($0) <= Self.milliseconds(now) } ?? false)
                && (id == nil || $0.id == id)
        }.sorted { ($0.nextPassAt!, $0.id) < ($1.nextPassAt!, $1.id) }
        var claimed: [ClaimedOperation] = []
        for operation in due where claimed.count < limit {
            if let current = claims[operation.id], !current.isFree(at: now) { continue }
            let interrupted = claims[operation.id]?.running
            claims[operation.id] = Claim(
                operationID: operation.id,
                owner: owner,
                expiresAt: Self.milliseconds(now.addingTimeInterval(lease.timeInterval))
            )
            claimed.append(ClaimedOperation(operation, interrupted: interrupted))
        }
        return claimed
    }

    /// What a host that died inside `step` leaves behind: `id` claimed by `owner` at `now`, `step` recorded as
    /// running, and the claim running out at `until`.
    func leaveRunning(_ id: String, owner: ClaimOwner, step: RunningStep, now: Date, until: Date) throws {
        let claimed = try claimDue(now: now, owner: owner, lease: .seconds(600), limit: 1, id: id)
        try #require(claimed.count == 1, "operation \(id) could not be claimed")
        try markRunning(operationID: id, owner: owner, step: step, until: until)
    }

    func markRunning(operationID: String, owner: ClaimOwner, step: RunningStep, until: Date) throws {
        try renewClaim(operationID: operationID, owner: owner, until: until)
        var running = step
        running.startedAt = Self.milliseconds(step.startedAt)
        claims[operationID]?.running = running
    }

    func renewClaim(operationID: String, owner: ClaimOwner, until: Date) throws {
        guard claims[operationID]?.owner == owner else {
            throw StorageError.claimLost(
                operationID: operationID,
                owner: owner,
                holder: claims[operationID]?.owner.description
            )
        }
        claims[operationID]?.expiresAt = Self.milliseconds(until)
    }

    func releaseClaim(operationID: String, owner: ClaimOwner) throws {
        if claims[operationID]?.owner == owner { claims[operationID] = nil }
    }

    func claim(operationID: String) throws -> Claim? { claims[operationID] }

    func nextDue(id: String?) throws -> Date? {
        operations.values.filter { !$0.state.isFinal && (id == nil || $0.id == id) }.compactMap(\.nextPassAt).min()
    }

    func recordLocalProvisioning(
        operationID: String,
        request: String,
        provisionerOperationID: String,
        runtimeID: String,
        at: Date
    ) throws -> (provisionerOperationID: String, runtimeID: String) {
        if let recorded = local[operationID] { return recorded }
        local[operationID] = (provisionerOperationID, runtimeID)
        return (provisionerOperationID, runtimeID)
    }

    func localProvisioningCount(operationID: String) throws -> Int { local[operationID] == nil ? 0 : 1 }

    /// Times as the SQLite store keeps them: milliseconds since 1970.
    private static func stored(_ operation: OperationRecord) -> OperationRecord {
        var operation = operation
        operation.createdAt = milliseconds(operation.createdAt)
        operation.updatedAt = milliseconds(operation.updatedAt)
        operation.deadline = milliseconds(operation.deadline)
        operation.nextPassAt = operation.nextPassAt.map(milliseconds)
        return operation
    }

    private static func milliseconds(_ date: Date) -> Date {
        Date(timeIntervalSince1970: (date.timeIntervalSince1970 * 1000).rounded() / 1000)
    }
}
