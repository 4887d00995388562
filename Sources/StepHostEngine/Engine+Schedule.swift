import Foundation
import Logging
public import StepHostCore
import StepHostStorage
import Synchronization

extension Engine {
    /// Processes operations until none is left unfinished: due ones run at once (up to `workers` at a time),
    /// parked ones when they come due. With `id`, only that operation. Throws `CancellationError` when the
    /// task is cancelled, between batches of passes.
    ///
    /// Waiting is one timer for the whole host, set to the earliest due time; no operation holds a task
    /// or a thread while it is parked.
    ///
    /// - Returns: every operation that was unfinished when the call began, as stored when it ended (whichever
    ///   host finished it), and how many passes this host ran.
    @discardableResult
    public func runUntilIdle(only id: String? = nil) async throws -> RunReport {
        let unfinished = try await unfinishedOperations(only: id)
        var passes = 0
        while true {
            try Task.checkCancellation()
            let ran = try await runDueBatches(only: id)
            passes += ran
            // A shutdown: the passes that ran have ended (parked, due at once); the rest waits for the next start.
            if isShuttingDown { break }
            if ran > 0 { continue }
            guard let due = try await store.nextDue(id: id) else { break }
            // Due but held by a live host: look again shortly. Otherwise sleep until it is due.
            let now = clock.now
            let wait = max(0.2, min(due.timeIntervalSince(now), 1))
            if due > now { events(.waiting(until: due)) }
            try await clock.sleep(until: now.addingTimeInterval(wait))
        }
        return try await report(unfinished, passes: passes)
    }

    /// Runs the operation with `id` to a final state and returns it as stored.
    ///
    /// - Throws: a ``StorageError`` (`.notFound` when there is no such operation).
    public func runToCompletion(operationID id: String) async throws -> OperationRecord {
        _ = try await runUntilIdle(only: id)
        // As stored now (it may also have ended before the call began).
        guard let operation = try await store.operation(id: id) else { throw StorageError.missing(id) }
        return operation
    }

    /// Runs one pass of every operation (or only `id`) that is due now and not held by a live host, up to
    /// `workers` at a time. Operations parked by these passes are left for later, even if they come due
    /// before the last pass ends: "due" means due when the call began.
    ///
    /// - Returns: every operation that was unfinished when the call began (due or not), as stored when it
    ///   ended, and how many passes this host ran.
    @discardableResult
    public func runDue(only id: String? = nil) async throws -> RunReport {
        let unfinished = try await unfinishedOperations(only: id)
        let passes = try await runDueBatches(only: id)
        return try await report(unfinished, passes: passes)
    }

    /// Claims and runs due operations until none is due; returns how many passes ran.
    ///
    /// Up to `workers` passes run at once, and a worker that finishes claims the next due operation at once:
    /// a slow step holds only its own worker, never the operations behind it. An operation a host died while
    /// running (or with a crash-loop trace) runs alone, once the passes before it have ended, so a death during
    /// it can be blamed on it. When a pass fails in a way that is not its operation's own (the database fails), no
    /// new pass starts, the running ones end normally (none is cancelled: a request already sent keeps its
    /// answer), and then the error is thrown.
    private func runDueBatches(only id: String?) async throws -> Int {
        let now = clock.now
        let workers = max(1, options.workers)
        // A pass runs alone when it is started alone (below), or when no other pass can start beside it: one
        // worker, or one operation asked for. Counting the passes running when a step starts would not do: a
        // pass started a moment later could still crash the host during that step.
        let soleWorker = workers == 1 || id != nil
        return try await withThrowingTaskGroup(of: Bool.self) { group in
            var running = 0
            var passes = 0
            var drained = false
            var failure: (any Error)?
            var alone: [ClaimedOperation] = []
            var runningAlone = false
            while true {
                // A shutdown stops new claims as if nothing more were due.
                if isShuttingDown { drained = true }
                if failure == nil && !drained && alone.isEmpty && !runningAlone && running < workers {
                    do {
                        // Cancellation stops new claims; a running pass always ends with a write.
                        try Task.checkCancellation()
                        if let reason = admission() { throw EngineStopped(reason: reason) }
                        // Due as of the batch's start, but leased from now: a claim taken late in the batch must not
                        // expire before the pass's first renewal (a third of the lease later). A clock that stepped
                        // back shortens nothing.
                        let claimed = try await store.claimDue(
                            now: now,
                            owner: owner,
                            lease: options.lease
                                + .milliseconds(Int64(max(0, clock.now.timeIntervalSince(now)) * 1000)),
                            limit: workers - running,
                            id: id
                        )
                        for operation in excusingOutage(claimed) {
                            if operation.runsAlone {
                                alone.append(operation)
                            } else {
                                // Beside other passes: a death now is only suspected, unless nothing can run beside it.
                                group.addTask(executorPreference: passExecutor) {
                                    try await self.runClaimed(operation, alone: soleWorker)
                                }
                                running += 1
                            }
                        }
                        // Nothing more is due now, except what the running passes may leave due (an abandoned pass).
                        if claimed.isEmpty { drained = true }
                    } catch {
                        failure = error
                    }
                }
                if running == 0, !alone.isEmpty, failure == nil, !isShuttingDown {
                    let operation = alone.removeFirst()
                    group.addTask(executorPreference: passExecutor) {
                        try await self.runClaimed(operation, alone: true)
                    }
                    running = 1
                    runningAlone = true
                }
                if running == 0 {
                    if let failure {
                        // Claimed but never started: released, so nothing waits for their leases.
                        for operation in alone {
                            try? await store.releaseClaim(operationID: operation.id, owner: owner)
                        }
                        throw failure
                    }
                    if drained && (alone.isEmpty || isShuttingDown) {
                        // Claimed but never started (a shutdown came first): released for the next start.
                        for operation in alone {
                            try? await store.releaseClaim(operationID: operation.id, owner: owner)
                        }
                        return passes
                    }
                    continue
                }
                do {
                    guard let ran = try await group.next() else { return passes }
                    running -= 1
                    runningAlone = false
                    if ran { passes += 1 }
                    // A finished pass may have left its operation due again (a conflict): look once more.
                    drained = drained && ran
                } catch {
                    running -= 1
                    runningAlone = false
                    if failure == nil { failure = error }
                }
            }
        }
    }

    /// The ids of the unfinished operations (or of `id`, if it is unfinished), oldest first.
    private func unfinishedOperations(only id: String?) async throws -> [String] {
        if let id {
            guard let operation = try await store.operation(id: id), !operation.state.isFinal else { return [] }
            return [id]
        }
        // Unreadable ones are included: claiming fails them, and the report says why.
        return try await store.unfinishedOperationIDs()
    }

    private func report(_ ids: [String], passes: Int) async throws -> RunReport {
        var operations: [OperationSummary] = []
        var unreadable: [UnreadableOperation] = []
        operations.reserveCapacity(ids.count)
        // States alone, read in chunks: a report of a long queue costs a few bytes per operation, not its rows.
        // Only a failed one is read whole, to tell one that could not be read (claiming failed it) from the rest.
        for start in stride(from: 0, to: ids.count, by: 500) {
            let chunk = Array(ids[start..<min(start + 500, ids.count)])
            let states = try await store.operationStates(ids: chunk)
            for id in chunk {
                guard let state = states[id] else { continue }
                if state != .failed {
                    operations.append(OperationSummary(id: id, state: state))
                    continue
                }
                do {
                    if let operation = try await store.operation(id: id) {
                        operations.append(OperationSummary(id: id, state: operation.state))
                    }
                } catch let error as StorageError where error.code == .corrupt {
                    unreadable.append(UnreadableOperation(id: id, state: "failed", reason: error.description))
                }
            }
        }
        return RunReport(operations: operations, unreadable: unreadable, passes: passes)
    }

    /// `claimed`, with the interrupted steps that a database outage explains no longer counted as host deaths.
    ///
    /// A host that cannot reach the database gives its passes up and cannot release their claims, so after an outage
    /// longer than the lease the other hosts find them expired with a step recorded, exactly as if that host had died
    /// in the step. Counted as deaths, they would run alone one after another and quarantine the plugins that were
    /// running, although nothing crashed. So a step that began before the database answered again (as this host's
    /// store saw it), taken over within a lease of that, is repeated like any interrupted pass, without a death.
    /// (A host that really died in such a step is not counted either: one death in an outage goes uncounted.)
    func excusingOutage(_ claimed: [ClaimedOperation]) -> [ClaimedOperation] {
        guard let outage = store.lastOutage,
            clock.now < outage.answeredAt.addingTimeInterval(options.lease.timeInterval)
        else { return claimed }
        return claimed.map { operation in
            guard let step = operation.interrupted, step.startedAt < outage.answeredAt else { return operation }
            logger.notice(
                "\(step.described) was interrupted while the database could not be reached; the pass is repeated, not counted as a host death",
                metadata: ["operation": "\(operation.id)", "step": "\(step.step)"]
            )
            return ClaimedOperation(operation.operation, interrupted: nil)
        }
    }

    /// One pass; `false` when it was abandoned because someone else wrote the operation or took it over.
    /// `alone`: no other pass of this host can run while this one does (see ``RunningStep/alone``).
    /// With `ridesOutDisconnection` (``serve()``), a database that cannot be reached ends only this pass: what the
    /// pass did since its last write is repeated by whoever claims the operation next (the step contract allows
    /// it), and the claim is released once the database answers again.
    func runClaimed(_ claimed: ClaimedOperation, alone: Bool, ridesOutDisconnection: Bool = false) async throws -> Bool
    {
        let operation = claimed.operation
        active.withLock { _ = $0.insert(operation.id) }
        defer { active.withLock { _ = $0.remove(operation.id) } }
        do {
            _ = try await runPass(operation, interrupted: claimed.interrupted, alone: alone)
            return true
        } catch let error as StorageError where error.code == .conflict || error.code == .claimLost {
            // Their write stands; this pass stops here without writing anything more. After a conflict this host
            // still holds the claim: release it, so the operation (still due) can be claimed again at once.
            logger.error("pass abandoned", metadata: ["operation": "\(operation.id)", "error": "\(error)"])
            if error.code == .conflict {
                try await store.releaseClaim(operationID: operation.id, owner: owner)
            }
            return false
        } catch let error as StorageError where error.code == .disconnected && ridesOutDisconnection {
            logger.warning(
                "pass given up: the database cannot be reached; the operation runs again once it can",
                metadata: ["operation": "\(operation.id)", "error": "\(error)"]
            )
            abandonedClaims.withLock { _ = $0.insert(operation.id) }
            return false
        } catch let error as StorageError where error.code == .refused {
            // The database refused what this operation would store: it fails this operation with the reason, never
            // the run for the others.
            logger.error(
                "saving the operation failed",
                metadata: ["operation": "\(operation.id)", "error": "\(error)"]
            )
            try await failAfterSaveError(operation.id, error)
            return true
        } catch {
            // The database itself fails (a full disk, I/O): nothing of this operation is lost and none of it is its
            // fault, so it is left as stored, unclaimed, for the next run; the run stops once the others end.
            logger.error("the database failed", metadata: ["operation": "\(operation.id)", "error": "\(error)"])
            try? await store.releaseClaim(operationID: operation.id, owner: owner)
            throw error
        }
    }

    /// Fails an operation whose pass could not be saved, as it was last stored (its last good state), with the
    /// reason. If even that write fails, the database fails as a whole, and the original error is thrown.
    private func failAfterSaveError(_ id: String, _ error: any Error) async throws {
        do {
            guard var stored = try await store.operation(id: id), !stored.state.isFinal else { return }
            let message = "the host could not save the operation: \(error)"
            stored.state = .failed
            stored.nextPassAt = nil
            stored.lastError = LastError(step: "stephost", plugin: nil, message: message)
            stored.description = "failed at step stephost: \(message)"
            stored.updatedAt = clock.now
            let saved = try await store.save(stored, stepRuns: [], claim: owner, releasingClaim: true)
            events(.finished(saved))
        } catch let second {
            logger.error(
                "failing the operation after a save error failed too",
                metadata: ["operation": "\(id)", "error": "\(second)"]
            )
            // So the next host does not count this stop as a death inside the step the claim names.
            try? await store.releaseClaim(operationID: id, owner: owner)
            throw error
        }
    }
}
