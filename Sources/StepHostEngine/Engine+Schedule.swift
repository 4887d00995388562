import Foundation
import Logging
public import StepHostCore
import StepHostStorage

extension Engine {
    /// Processes operations until none is left unfinished: due ones run at once (up to `workers` at a time),
    /// parked ones when they come due. With `id`, only that operation. Throws `CancellationError` when the
    /// task is cancelled, between batches of passes.
    ///
    /// Waiting is one timer for the whole host, set to the earliest due time; no operation holds a task
    /// or a thread while it is parked.
    @discardableResult
    public func runUntilIdle(only id: String? = nil) async throws -> RunReport {
        var report = RunReport()
        while true {
            try Task.checkCancellation()
            let ran = try await runDue(only: id)
            report.merge(ran)
            if ran.passes > 0 { continue }
            guard let due = try await store.nextDue(id: id) else { return report }
            // Due but held by a live host: look again shortly. Otherwise sleep until it is due.
            let now = clock.now
            let wait = max(0.2, min(due.timeIntervalSince(now), 1))
            if due > now { events(.waiting(until: due)) }
            try await clock.sleep(until: now.addingTimeInterval(wait))
        }
    }

    /// Runs the operation with `id` to a final state and returns it as stored.
    ///
    /// - Throws: a ``StorageError`` (`.notFound` when there is no such operation).
    public func runToCompletion(operationID id: String) async throws -> OperationRecord {
        let report = try await runUntilIdle(only: id)
        if let operation = report.operation(id: id), operation.state.isFinal { return operation }
        // Another host finished it, or its last pass was abandoned to another writer: the store knows.
        guard let operation = try await store.operation(id: id) else { throw StorageError.missing(id) }
        return operation
    }

    /// Runs one pass of every operation (or only `id`) that is due now and not held by a live host, up to
    /// `workers` at a time. Operations parked by these passes are left for later, even if they come due
    /// before the last pass ends: "due" means due when the call began.
    @discardableResult
    public func runDue(only id: String? = nil) async throws -> RunReport {
        let now = clock.now
        var report = RunReport()
        while true {
            // Cancellation (a shutdown) stops between batches; a running pass always ends with a write.
            try Task.checkCancellation()
            let claimed = try await store.claimDue(
                now: now,
                owner: owner,
                lease: options.lease,
                limit: max(1, options.workers),
                id: id
            )
            if claimed.isEmpty { return report }
            let claimedUntil = now.addingTimeInterval(options.lease.timeInterval)
            try await withThrowingTaskGroup(of: OperationRecord?.self) { group in
                for operation in claimed {
                    group.addTask { try await self.runClaimed(operation, claimedUntil: claimedUntil) }
                }
                for try await case let operation? in group {
                    report.record(pass: operation)
                }
            }
        }
    }

    /// One pass; `nil` when it was abandoned because someone else wrote the operation or took it over.
    private func runClaimed(_ operation: OperationRecord, claimedUntil: Date) async throws -> OperationRecord? {
        do {
            return try await runPass(operation, claimedUntil: claimedUntil)
        } catch let error as StorageError where error.code == .conflict || error.code == .claimLost {
            // Their write stands; this pass stops here without writing anything more.
            // A conflict leaves this host's claim in place: the operation is still due, and the next claim of
            // this host (in this call, or the next) runs it again.
            logger.error("pass abandoned", metadata: ["operation": "\(operation.id)", "error": "\(error)"])
            return nil
        }
    }
}
