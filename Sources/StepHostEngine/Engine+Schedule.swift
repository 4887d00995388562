import Foundation
import Logging
import StepHostStorage

extension Engine {
    /// Processes operations until none is left unfinished: due ones run at once (up to `workers` at a time),
    /// parked ones when they come due. With `id`, only that operation.
    ///
    /// Waiting is one timer for the whole host, set to the earliest due time; no operation holds a task
    /// or a thread while it is parked.
    public func runUntilIdle(only id: String? = nil) async throws {
        while true {
            if try await runDue(only: id) > 0 { continue }
            guard let due = try await store.nextDue(id: id) else { return }
            // Due but held by a live host: look again shortly. Otherwise sleep until it is due.
            let wait = max(0.2, min(due.timeIntervalSinceNow, 1))
            if due.timeIntervalSinceNow > 0 { events(.waiting(until: due)) }
            try await Task.sleep(for: .milliseconds(Int(wait * 1000)))
        }
    }

    /// Runs one pass of every operation (or only `id`) that is due now and not held by a live host, up to
    /// `workers` at a time, and returns how many passes ran. Operations parked by these passes are left for
    /// later, even if they come due before the last pass ends: "due" means due when the call began.
    @discardableResult
    public func runDue(only id: String? = nil) async throws -> Int {
        let now = Date()
        var passes = 0
        while true {
            let claimed = try await store.claimDue(
                now: now,
                owner: owner,
                lease: options.lease,
                limit: max(1, options.workers),
                id: id
            )
            if claimed.isEmpty { return passes }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for operation in claimed {
                    group.addTask { try await self.runClaimed(operation) }
                }
                try await group.waitForAll()
            }
            passes += claimed.count
        }
    }

    private func runClaimed(_ operation: OperationRecord) async throws {
        do {
            _ = try await runPass(operation)
        } catch let error as StorageError where error.code == .conflict {
            // Someone else wrote the operation: their write stands, this pass stops here.
            logger.error("pass abandoned", metadata: ["operation": "\(operation.id)", "error": "\(error)"])
        }
    }
}
