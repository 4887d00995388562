import GRDB
import Metrics
import StepHostCore
import StepHostStorage
import Synchronization

/// One save waiting for its transaction.
struct SaveRequest: Sendable {
    var operation: OperationRecord
    var stepRuns: [StepRun]
    var claim: ClaimOwner?
    var releasingClaim: Bool
    /// Whether the commit must reach the disk before the save returns (`synchronous=FULL`). A save that need
    /// not (a pass's start) is made durable by the next durable commit: the WAL is written in order.
    var durable: Bool
}

/// Saves waiting while another batch commits.
struct SaveQueue: Sendable {
    var waiting: [(request: SaveRequest, continuation: CheckedContinuation<OperationRecord, any Error>)] = []
    /// Whether a batch is being committed now.
    var committing = false
}

extension SQLiteOperationStore {
    /// Group commit: saves that arrive while a transaction commits wait, and then all commit together in the next
    /// transaction, with one sync of the disk for all of them. Each is still checked on its own (its claim and the
    /// version it was based on) in a savepoint of its own: one that is refused (a conflict, a lost claim, a value
    /// the database refuses) is rolled back alone and fails alone. No save returns before its commit is durable
    /// (unless it asked for an unsynced one). With one pass at a time there is nothing to wait for: the save
    /// commits at once, on the caller's task.
    func commitSave(_ request: SaveRequest) async throws -> OperationRecord {
        let lead = saveQueue.withLock { queue in
            if queue.committing { return false }
            queue.committing = true
            return true
        }
        if lead {
            let result = await commitBatch([request]).first!
            handOver()
            return try result.get()
        }
        return try await withCheckedThrowingContinuation { continuation in
            let queued = saveQueue.withLock { queue in
                guard queue.committing else {
                    queue.committing = true
                    return false
                }
                queue.waiting.append((request, continuation))
                return true
            }
            // The batch ended in between: this save leads the next one.
            if !queued { drain(first: [(request, continuation)]) }
        }
    }

    /// After a batch: the saves that queued meanwhile commit next, on a task of their own.
    private func handOver() {
        let next = saveQueue.withLock { queue in
            let waiting = queue.waiting
            queue.waiting = []
            if waiting.isEmpty { queue.committing = false }
            return waiting
        }
        if !next.isEmpty { drain(first: next) }
    }

    private func drain(first: [(request: SaveRequest, continuation: CheckedContinuation<OperationRecord, any Error>)]) {
        Task(executorPreference: globalConcurrentExecutor) { [self] in
            var batch = first
            while !batch.isEmpty {
                let results = await commitBatch(batch.map(\.request))
                for (waiting, result) in zip(batch, results) { waiting.continuation.resume(with: result) }
                batch = saveQueue.withLock { queue in
                    let waiting = queue.waiting
                    queue.waiting = []
                    if waiting.isEmpty { queue.committing = false }
                    return waiting
                }
            }
        }
    }

    /// Commits `requests` in one transaction; the result of each, in order.
    private func commitBatch(_ requests: [SaveRequest]) async -> [Result<OperationRecord, any Error>] {
        let durable = requests.contains(where: \.durable)
        let started = ContinuousClock.now
        defer {
            let elapsed = (ContinuousClock.now - started).components
            Self.commitLatency.recordNanoseconds(elapsed.seconds * 1_000_000_000 + elapsed.attoseconds / 1_000_000_000)
        }
        do {
            let results = try await pool.writeWithoutTransaction { db in
                var results: [Result<OperationRecord, any Error>] = []
                try Self.withSynchronous(durable ? nil : "NORMAL", db) {
                    try db.inTransaction(.immediate) {
                        // Alone in its transaction, a save needs no savepoint: a refusal rolls the transaction back
                        // (below, where the error is mapped as for a whole batch).
                        if requests.count == 1 {
                            results.append(.success(try Self.write(requests[0], db)))
                            return .commit
                        }
                        for request in requests {
                            do {
                                var saved: OperationRecord?
                                try db.inSavepoint {
                                    saved = try Self.write(request, db)
                                    return .commit
                                }
                                results.append(.success(saved!))
                            } catch let error as StorageError {
                                results.append(.failure(error))
                            } catch let error as DatabaseError where Self.refusesOnlyThisWrite(error) {
                                results.append(.failure(Self.storageError(error, path: path)))
                            }
                        }
                        return .commit
                    }
                }
                return results
            }
            if durable { countDurableCommit() }
            return results
        } catch {
            // The database failed as a whole (I/O, a full disk): nothing of the batch is committed.
            let failure = error as? StorageError ?? Self.storageError(error, path: path)
            return requests.map { _ in .failure(failure) }
        }
    }

    /// How long a batch of saves takes to commit (to disk when durable), for `stephost_commit_seconds`.
    static let commitLatency = Metrics.Timer(label: "stephost_commit_seconds")

    /// Errors that refuse one write (its values), not the database: the others in the batch go on.
    static func refusesOnlyThisWrite(_ error: DatabaseError) -> Bool {
        [.SQLITE_CONSTRAINT, .SQLITE_TOOBIG, .SQLITE_MISMATCH, .SQLITE_RANGE].contains(error.resultCode)
    }

    /// Runs `body` with the writer's `synchronous` set to `level` (`nil`: left at FULL), and FULL again after,
    /// whatever happens: the writer is never left unsynced for the next transaction.
    static func withSynchronous<T>(_ level: String?, _ db: Database, _ body: () throws -> T) throws -> T {
        guard let level else { return try body() }
        try db.cachedStatement(sql: "PRAGMA synchronous = \(level)").execute()
        let result: T
        do {
            result = try body()
        } catch {
            try db.cachedStatement(sql: "PRAGMA synchronous = FULL").execute()
            throw error
        }
        try db.cachedStatement(sql: "PRAGMA synchronous = FULL").execute()
        return result
    }

    /// One write transaction committed without waiting for the disk: it survives the host process, not a power
    /// loss, until the next durable commit (the WAL is written in order) takes it to disk. `NORMAL`, not `OFF`:
    /// in WAL mode neither syncs a commit, but `OFF` also skips the syncs around a checkpoint, so a checkpoint
    /// that such a commit triggers could let the WAL's restart overwrite durable commits before they reached the
    /// database file (found by replaying a run's writes at every sync point).
    func unsyncedWrite<T: Sendable>(_ updates: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await pool.writeWithoutTransaction { db in
            try Self.withSynchronous("NORMAL", db) {
                var result: T?
                try db.inTransaction(.immediate) {
                    result = try updates(db)
                    return .commit
                }
                return result!
            }
        }
    }
}
