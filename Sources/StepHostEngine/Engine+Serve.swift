import Foundation
import Logging
import StepHostCore
import StepHostStorage
import Synchronization

extension Engine {
    /// Processes operations as they come due until ``beginShutdown()``, for a host that runs as a service.
    ///
    /// Up to `workers` passes run at once. Whenever a worker is free, the host claims whatever is due: when a pass
    /// ends, when ``wake()`` says an operation was created, and when the earliest parked operation comes due (one
    /// timer; a parked operation holds no worker and no task). A slow step holds only its own worker. After
    /// ``beginShutdown()`` nothing more is claimed and the call returns once the running passes ended (each after
    /// its current step). Operations a host died in run alone, as in ``runUntilIdle(only:)``.
    ///
    /// - Throws: ``EngineStopped`` when the host must take no new work (too many stuck steps), or the store's error
    ///   when the database fails; in both cases after the running passes ended.
    public func serve() async throws {
        let workers = max(1, options.workers)
        try await withThrowingTaskGroup(of: Bool?.self) { group in
            var running = 0
            var waiting = false
            var failure: (any Error)?
            var alone: [ClaimedOperation] = []
            var runningAlone = false
            var unreachable = false
            defer { group.cancelAll() }
            while true {
                if failure == nil, !isShuttingDown, alone.isEmpty, !runningAlone, running < workers {
                    do {
                        if let reason = admission() { throw EngineStopped(reason: reason) }
                        try await releaseAbandonedClaims()
                        let now = clock.now
                        let claimed = try await store.claimDue(
                            now: now,
                            owner: owner,
                            lease: options.lease,
                            limit: workers - running,
                            id: nil
                        )
                        for operation in excusingOutage(claimed) {
                            if operation.runsAlone {
                                alone.append(operation)
                            } else {
                                group.addTask(executorPreference: passExecutor) {
                                    try await self.runClaimed(
                                        operation,
                                        alone: workers == 1,
                                        ridesOutDisconnection: true
                                    )
                                }
                                running += 1
                            }
                        }
                        if unreachable {
                            unreachable = false
                            logger.warning("the database answers again; taking work")
                        }
                    } catch let error as StorageError where error.code == .disconnected {
                        // A database server that restarts or a network that fails: nothing was claimed. The host
                        // keeps running and looks again after the pause below (a second while nothing answers).
                        if !unreachable {
                            unreachable = true
                            logger.warning(
                                "the database cannot be reached; waiting for it",
                                metadata: ["error": "\(error)"]
                            )
                        }
                    } catch {
                        failure = error
                    }
                }
                if running == 0, !alone.isEmpty, failure == nil, !isShuttingDown {
                    let operation = alone.removeFirst()
                    group.addTask(executorPreference: passExecutor) {
                        try await self.runClaimed(operation, alone: true, ridesOutDisconnection: true)
                    }
                    running = 1
                    runningAlone = true
                }
                if running == 0, failure != nil || isShuttingDown {
                    for operation in alone {
                        try? await store.releaseClaim(operationID: operation.id, owner: owner)
                    }
                    if let failure { throw failure }
                    return
                }
                // A free worker waits for the next due time or a wake-up; busy ones only for a pass to end.
                if !waiting, running < workers, failure == nil, !isShuttingDown {
                    let pause = await pauseBeforeNextLook(busy: running > 0)
                    group.addTask {
                        await self.wakeup.wait(seconds: pause)
                        return nil
                    }
                    waiting = true
                }
                do {
                    guard let ended = try await group.next() else { continue }
                    if ended == nil {
                        waiting = false
                    } else {
                        running -= 1
                        runningAlone = false
                    }
                } catch {
                    running -= 1
                    runningAlone = false
                    if failure == nil { failure = error }
                }
            }
        }
    }

    /// Releases the claims of passes given up while the database could not be reached; throws if it still cannot.
    private func releaseAbandonedClaims() async throws {
        for id in abandonedClaims.withLock({ $0 }).sorted() {
            try await store.releaseClaim(operationID: id, owner: owner)
            abandonedClaims.withLock { _ = $0.remove(id) }
        }
    }

    /// How long a free worker waits before it looks for due operations again (unless woken first): until the
    /// earliest parked one is due, at most 5 seconds (another host or `stephost provision --detach` may add
    /// operations to the same database); a second when one is due but held (by a pass of this host or another
    /// live host); a quarter of a second if nothing runs here.
    private func pauseBeforeNextLook(busy: Bool) async -> Double {
        let next: Date?
        do {
            next = try await store.nextDue(id: nil)
        } catch {
            logger.error("looking for the next due operation failed", metadata: ["error": "\(error)"])
            return 1
        }
        guard let next else { return 5 }
        let seconds = next.timeIntervalSince(clock.now)
        if seconds <= 0 { return busy ? 1 : 0.25 }
        return min(seconds, 5)
    }
}
