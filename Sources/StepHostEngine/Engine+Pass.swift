import Foundation
import Logging
import StepHostCore
import StepHostPipeline
import StepHostStorage
import Synchronization

extension Engine {
    /// Runs one pass of an operation this host has claimed, and returns the operation as persisted after it.
    /// `interrupted` is the step a previous host died in, as its claim recorded; `alone` says whether no other
    /// pass of this host can run during this one.
    func runPass(
        _ claimed: OperationRecord,
        interrupted: RunningStep? = nil,
        alone: Bool
    ) async throws -> OperationRecord {
        var operation = claimed
        var resumed = ""
        if let interrupted {
            // The crash-loop guard: a step that took the host down is not run again forever.
            let deaths = HostDeaths.after(operation.hostDeaths, diedIn: interrupted)
            operation.hostDeaths = deaths
            // Before any step of this pass: a quarantined plugin's step already runs isolated in it.
            await hostDied(interrupted, interrupted.alone != false)
            logger.error(
                "\(deaths.described)",
                metadata: ["operation": "\(operation.id)", "step": "\(interrupted.step)"]
            )
            if deaths.count >= options.maximumHostDeaths {
                return try await finish(
                    operation,
                    state: .failed,
                    error: LastError(
                        step: interrupted.step,
                        plugin: interrupted.plugin,
                        message: "\(deaths.described); after \(options.maximumHostDeaths) host deaths in a row while "
                            + "it ran alone it is not run again: fix the plugin, or disable it with --disable-plugin, "
                            + "and provision again"
                    ),
                    runs: []
                )
            }
            resumed =
                " alone, after \(deaths.described); \(deaths.count) of \(options.maximumHostDeaths) deaths allowed"
        }
        if clock.now >= operation.deadline {
            return try await failAtDeadline(
                operation,
                "after \(operation.passes) passes; it was \(operation.description)",
                runs: []
            )
        }
        operation.passes += 1
        operation.state = .inProgress
        if !options.disabledPlugins.isEmpty {
            operation.disabledPlugins = Set(operation.disabledPlugins).union(options.disabledPlugins).sorted()
        }
        operation.description = "running pass \(operation.passes)\(resumed)"
        // Not forced to disk: it only has to outlive this process. The pass's next durable write (a step's change,
        // its end) takes it to disk with it; if the machine dies first, the pass is simply run again.
        operation = try await save(operation, durable: false)
        let pass = operation.passes
        let steps = pipeline.steps.count
        let keeper = keepClaim(operation.id)
        defer {
            keeper.stop()
            // After the pass's last write: until then, a death leaves the record for the next host.
            runningRecorder?.clearRunning(operationID: claimed.id, owner: owner)
        }
        events(.passStarted(operationID: operation.id, pass: pass, steps: steps))

        var input = InputCreator()
        var runs: [StepRun] = []
        for (index, step) in pipeline.steps.enumerated() {
            let identity = step.identity
            // Checked before every step, not only when the pass starts: a slow step must not let a later one
            // (create_runtime's request above all) start after the deadline.
            if clock.now >= operation.deadline {
                return try await failAtDeadline(
                    operation,
                    "in pass \(pass) before step \(identity.name) (\(index + 1) of \(steps)) could start",
                    runs: runs
                )
            }
            if keeper.isLost {
                throw StorageError.claimLost(operationID: operation.id, owner: owner, holder: nil)
            }
            // A shutdown: the step that ran has ended and is saved with the pass; the operation is due again at once
            // and its claim released, so the next start resumes it from the first step (the step contract allows it).
            if isShuttingDown {
                return try await park(
                    operation,
                    after: .zero,
                    reason: "the host shut down before step \(identity.name) (\(index + 1) of \(steps)); the next "
                        + "start resumes it",
                    runs: runs
                )
            }
            let started = clock.now
            // Recorded with the claim (renewing it) before the step is called: if the host dies inside the step,
            // the next host to take the operation knows which step it was.
            let running = RunningStep(
                step: identity.name,
                plugin: identity.plugin?.name,
                pluginFileHash: identity.plugin?.fileHash,
                pass: pass,
                startedAt: started,
                alone: alone
            )
            if runningRecorder?.recordRunning(operationID: operation.id, owner: owner, step: running) != true {
                try await store.markRunning(
                    operationID: operation.id,
                    owner: owner,
                    step: running,
                    until: started.addingTimeInterval(options.lease.timeInterval)
                )
            }
            let clockStart = ContinuousClock.now
            let before = operation
            let checkpoints = Checkpoints(before)
            let passSecrets = input.secretValues
            let context = StepContext(
                input: input,
                pass: pass,
                minimumLogLevel: minimumLogLevel,
                checkpoint: { changes in try await self.checkpoint(changes, of: before, into: checkpoints) },
                log: { [self] line, declared in
                    // As the line arrives: a long step's progress shows while it runs, and nothing piles up.
                    log([line], scrubber: SecretScrubber(passSecrets + declared), operation: before.id, step: identity)
                }
            )
            var result = await step.run(before, context: context)
            if result.outcome.kind != .fault, let problem = Self.fieldsTooLarge(before, result.changes) {
                result.outcome = .fault(problem)
            }
            let duration = ContinuousClock.now - clockStart

            // The step's writes apply on top of the operation as it stood when the step began (with the
            // version its checkpoints left). A faulty step's writes are all discarded, checkpoints included.
            let (latest, persisted) = checkpoints.state
            operation = before
            operation.version = latest.version
            let faulted = result.outcome.kind == .fault
            if !faulted {
                input.apply(result)
                operation.apply(result.changes)
            }
            // What the step changed beyond its last checkpoint (a fault always ends the pass with a save).
            let unsaved = !faulted && result.changes != (persisted ?? OperationChanges())

            // Secrets a faulty step declared are discarded with its writes, but still kept out of its messages.
            let scrubber = SecretScrubber(input.secretValues + result.declaredSecrets)
            log(result.logs, scrubber: scrubber, operation: operation.id, step: identity)
            let run = StepRun(
                operationID: operation.id,
                pass: pass,
                position: index + 1,
                step: identity.name,
                plugin: identity.plugin?.name,
                pluginFileHash: identity.plugin?.fileHash,
                outcome: result.outcome.kind,
                startedAt: started,
                durationMilliseconds: duration.milliseconds,
                message: Self.message(result.outcome, scrubber: scrubber),
                pluginVersion: identity.plugin?.version
            )
            runs.append(run)
            events(.stepFinished(operationID: operation.id, pass: pass, position: index + 1, steps: steps, run: run))

            switch result.outcome {
            case .done:
                // Persist before the next step whenever the step changed what is not yet stored.
                if unsaved {
                    operation = try await save(operation, runs: runs)
                    runs = []
                }
            case .retry(let delay):
                let requested = delay ?? options.defaultRetryDelay
                let wait = max(requested, options.minimumRetryDelay)
                let raised =
                    wait > requested ? " (raised to the minimum retry delay of \(Self.describe(wait)))" : ""
                return try await park(
                    operation,
                    after: wait,
                    reason: "\(identity.name) asked to retry: \(run.message ?? "")\(raised)",
                    runs: runs
                )
            case .fail, .fault:
                return try await finish(
                    operation,
                    state: .failed,
                    error: LastError(
                        step: identity.name,
                        plugin: identity.plugin?.name,
                        message: run.message ?? run.outcome.rawValue
                    ),
                    runs: runs
                )
            }
        }
        let runtime = operation.runtime.runtimeID.map { "runtime \($0) provisioned" } ?? "provisioned"
        operation.description = "\(runtime) in \(pass) pass\(pass == 1 ? "" : "es")"
        return try await finish(operation, state: .succeeded, error: nil, runs: runs)
    }

    /// Ends the operation failed because it passed its deadline; `when` says where the pass was.
    private func failAtDeadline(
        _ operation: OperationRecord,
        _ when: String,
        runs: [StepRun]
    ) async throws
        -> OperationRecord
    {
        let deadline = ISO8601DateFormatter().string(from: operation.deadline)
        return try await finish(
            operation,
            state: .failed,
            error: LastError(
                step: "stephost",
                plugin: nil,
                message: "the operation passed its deadline (\(deadline)) \(when)"
            ),
            runs: runs
        )
    }

    /// What a step's checkpoints persisted so far: the operation as stored and the changes it holds.
    final class Checkpoints: Sendable {
        private let current: Mutex<(operation: OperationRecord, changes: OperationChanges?)>

        init(_ operation: OperationRecord) {
            current = Mutex((operation, nil))
        }

        var state: (operation: OperationRecord, changes: OperationChanges?) { current.withLock { $0 } }

        func update(_ operation: OperationRecord, _ changes: OperationChanges) {
            current.withLock { $0 = (operation, changes) }
        }
    }

    /// Persists a step's changes so far on top of the operation as it was when the step began.
    private func checkpoint(
        _ changes: OperationChanges,
        of before: OperationRecord,
        into checkpoints: Checkpoints
    ) async throws -> OperationRecord {
        var updated = before
        updated.version = checkpoints.state.operation.version
        updated.apply(changes)
        if let problem = Self.fieldsTooLarge(before, changes) {
            logger.error("checkpoint refused", metadata: ["operation": "\(before.id)", "error": "\(problem)"])
            throw CheckpointRefused(message: problem)
        }
        do {
            let saved = try await save(updated)
            checkpoints.update(saved, changes)
            return saved
        } catch {
            logger.error("checkpoint failed", metadata: ["operation": "\(before.id)", "error": "\(error)"])
            throw error
        }
    }

    /// Renews this host's claim on `id` every third of the lease until stopped, so a pass that runs longer than the
    /// lease is not taken over by another host meanwhile. The cadence is real time; the expiry written comes from
    /// the engine's clock. A renewal that fails (another host holds the claim) ends the renewals and marks the
    /// claim lost: the pass starts no further step, and its next write is refused anyway.
    ///
    /// The wait is a dispatch timer that ``ClaimKeeper/stop()`` cancels, not a task in `Task.sleep`: a cancelled
    /// `Task.sleep` leaves its timer and sleep task queued until the deadline, so every pass held about a kilobyte
    /// for a third of the lease after it ended (a hundred seconds by default), and the host's memory grew with
    /// the passes it ran. The renewals run on the global executor, never on the pass's own (whose threads may all
    /// be inside steps); the next wait starts when a renewal ends.
    func keepClaim(_ id: String) -> ClaimKeeper {
        let keeper = ClaimKeeper()
        let interval = (options.lease / 3).timeInterval
        let lease = options.lease
        keeper.start(after: interval) { [self] in
            Task(executorPreference: globalConcurrentExecutor) { [self] in
                do {
                    try await store.renewClaim(
                        operationID: id,
                        owner: owner,
                        until: clock.now.addingTimeInterval(options.lease.timeInterval)
                    )
                    keeper.noteRenewed()
                    keeper.wait(interval)
                } catch let error as StorageError
                    where error.code == .disconnected && keeper.lastRenewed + lease * 2 / 3 > .now
                {
                    // The database is away for now, and the claim still holds for a while: try again soon, so a
                    // short outage does not stop the pass. Once the claim may have run out, it counts as lost.
                    if keeper.isStopped { return }
                    keeper.wait(min(interval, 1))
                } catch {
                    if keeper.isStopped { return }
                    logger.error("claim renewal failed", metadata: ["operation": "\(id)", "error": "\(error)"])
                    keeper.markLost()
                }
            }
        }
        return keeper
    }

    /// The renewals of one pass's claim (``keepClaim(_:)``).
    final class ClaimKeeper: Sendable {
        /// The wait before the next renewal. A dispatch source may be used from any thread.
        private nonisolated(unsafe) let timer = DispatchSource.makeTimerSource(queue: .global())
        private let stopped = Atomic<Bool>(false)
        private let lost = Atomic<Bool>(false)
        private let renewedAt = Mutex(ContinuousClock.now)

        /// When the claim was last taken or renewed.
        var lastRenewed: ContinuousClock.Instant { renewedAt.withLock { $0 } }
        fileprivate func noteRenewed() { renewedAt.withLock { $0 = .now } }

        /// Whether a renewal found the claim held by another host.
        var isLost: Bool { lost.load(ordering: .acquiring) }
        var isStopped: Bool { stopped.load(ordering: .acquiring) }

        /// Calls `renew` in `seconds`, and again `seconds` after each ``wait(_:)``, until stopped.
        fileprivate func start(after seconds: TimeInterval, renew: @escaping @Sendable () -> Void) {
            timer.setEventHandler(handler: renew)
            timer.schedule(deadline: .now() + seconds)
            timer.resume()
        }

        /// The next renewal in `seconds` (none once stopped: a cancelled timer never fires).
        fileprivate func wait(_ seconds: TimeInterval) { timer.schedule(deadline: .now() + seconds) }

        fileprivate func markLost() { lost.store(true, ordering: .releasing) }

        /// Cancels the timer: it and its handler (which holds this keeper) are freed at once.
        func stop() {
            if !stopped.exchange(true, ordering: .acquiringAndReleasing) { timer.cancel() }
        }
    }

    /// The lowest level of a step's log line that the engine's logger writes.
    var minimumLogLevel: StepLogLevel {
        switch logger.logLevel {
        case .trace, .debug: .debug
        case .info, .notice: .info
        case .warning: .warning
        case .error, .critical: .error
        }
    }

    /// Why `changes` cannot be applied to `operation`: its custom fields would exceed their total size.
    static func fieldsTooLarge(_ operation: OperationRecord, _ changes: OperationChanges) -> String? {
        guard !changes.fields.isEmpty else { return nil }
        var updated = operation
        updated.apply(changes)
        let total = updated.fields.reduce(0) { $0 + $1.key.string.utf8.count + $1.value.utf8.count }
        guard total > FieldValue.maximumTotalBytes else { return nil }
        return "the step's writes would make the operation's custom fields \(total) bytes, more than "
            + "\(FieldValue.maximumTotalBytes)"
    }

    /// A checkpoint the engine refuses (its fields would be too large).
    struct CheckpointRefused: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }

    /// Saves the operation's data (optimistic on its version, refused if this host lost its claim).
    private func save(
        _ operation: OperationRecord,
        runs: [StepRun] = [],
        releasingClaim: Bool = false,
        durable: Bool = true
    ) async throws -> OperationRecord {
        var updated = operation
        updated.updatedAt = clock.now
        return try await store.save(
            updated,
            stepRuns: runs,
            claim: owner,
            releasingClaim: releasingClaim,
            durable: durable
        )
    }

    /// Ends the pass with the operation parked until its next pass, never later than its deadline.
    private func park(
        _ operation: OperationRecord,
        after wait: Duration,
        reason: String,
        runs: [StepRun]
    ) async throws -> OperationRecord {
        var parked = operation
        parked.hostDeaths = nil  // the pass ended: no crash loop
        // Never park past the deadline: the pass at the deadline fails the operation.
        let due = min(clock.now.addingTimeInterval(wait.timeInterval), operation.deadline)
        parked.nextPassAt = due
        parked.description = "waiting for pass \(operation.passes + 1): \(reason)"
        let saved = try await save(parked, runs: runs, releasingClaim: true)
        events(.parked(operationID: saved.id, until: due, reason: reason))
        return saved
    }

    private func finish(
        _ operation: OperationRecord,
        state: OperationState,
        error: LastError?,
        runs: [StepRun]
    ) async throws -> OperationRecord {
        var finished = operation
        finished.state = state
        finished.nextPassAt = nil
        if state == .succeeded { finished.hostDeaths = nil }
        finished.lastError = error.map { error in
            var error = error
            // A failure after the provisioner accepted the request leaves a runtime behind: say which.
            if let accepted = operation.runtime.provisionerOperationID {
                error.message +=
                    "; the provisioner had accepted the request as operation \(accepted)"
                    + (operation.runtime.runtimeID.map { " for runtime \($0)" } ?? "") + ", which stays recorded"
            }
            return error
        }
        if let error = finished.lastError {
            finished.description = "failed at step \(error.step): \(error.message)"
        }
        let saved = try await save(finished, runs: runs, releasingClaim: true)
        logger.info(
            "operation \(state.rawValue)",
            metadata: [
                "operation": "\(saved.id)", "passes": "\(saved.passes)",
                "error": "\(finished.lastError?.message.escapingControlCharacters ?? "-")",
            ]
        )
        events(.finished(saved))
        return saved
    }

    private func log(_ lines: [StepLogLine], scrubber: SecretScrubber, operation: String, step: StepIdentity) {
        for line in lines {
            logger.log(
                level: line.level.loggerLevel,
                "\(Self.shown(line.message, scrubber))",
                metadata: [
                    "operation": "\(operation)", "step": "\(step.name)", "plugin": "\(step.plugin?.name ?? "stephost")",
                ]
            )
        }
    }

    /// The most of a step's message the history and the logs keep.
    static let maximumMessageLength = 4096

    /// Plugin text as the host writes it anywhere: secrets removed first, then cut to size, then escaped.
    static func shown(_ text: String, _ scrubber: SecretScrubber) -> String {
        scrubber.scrub(text).cut(toUTF8: maximumMessageLength).escapingControlCharacters
    }

    /// A delay as the history words it: whole milliseconds.
    static func describe(_ delay: Duration) -> String {
        "\(Int64(delay.milliseconds.rounded())) ms"
    }

    /// The history's message for an outcome, with secret values removed.
    static func message(_ outcome: StepOutcome, scrubber: SecretScrubber) -> String? {
        switch outcome {
        case .done: nil
        case .retry(let delay):
            delay.map { "after \(describe($0))" } ?? "after the default delay"
        case .fail(let message), .fault(let message): scrubber.scrub(message).cut(toUTF8: maximumMessageLength)
        }
    }
}

extension StepLogLevel {
    /// The swift-log level a step's log line is written at.
    var loggerLevel: Logger.Level {
        switch self {
        case .debug: .debug
        case .info: .info
        case .warning: .warning
        case .error: .error
        }
    }
}
