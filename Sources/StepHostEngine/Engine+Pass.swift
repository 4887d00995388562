import Foundation
import Logging
import StepHostLoader
import StepHostPipeline
import StepHostRuntime
import StepHostStorage
import Synchronization

extension Engine {
    /// What a step run produced, whichever kind of step it was.
    struct StepOutcome {
        var result: StepResult
        /// The operation as the step left it (create_runtime and checkpoints save it mid-step).
        var operation: OperationRecord
    }

    /// Runs one pass of an operation this host has claimed, and returns the operation as persisted after it.
    func runPass(_ claimed: OperationRecord) async throws -> OperationRecord {
        var operation = claimed
        let now = Date()
        if now >= operation.deadline {
            return try await finish(
                operation,
                state: .failed,
                error: LastError(
                    step: "stephost",
                    plugin: nil,
                    message:
                        "the operation passed its deadline (\(ISO8601DateFormatter().string(from: operation.deadline))) "
                        + "after \(operation.attempt) passes; it was \(operation.description)"
                ),
                runs: []
            )
        }
        operation.attempt += 1
        operation.state = .inProgress
        operation.description = "running pass \(operation.attempt)"
        operation = try await save(operation)
        let pass = operation.attempt
        events(.passStarted(operationID: operation.id, pass: pass, steps: pipeline.steps.count))

        var input = RuntimeInput()
        var runs: [StepRun] = []
        for (index, step) in pipeline.steps.enumerated() {
            let started = Date()
            let clock = ContinuousClock.now
            let outcome: StepOutcome
            switch step {
            case .plugin(let pluginStep):
                outcome = await runPluginStep(pluginStep, operation: operation)
            case .createRuntime:
                outcome = try await createRuntime(operation: operation, input: input)
            }
            operation = outcome.operation
            let result = outcome.result
            if case .fault = result.outcome {
                // A plugin that broke the ABI gets none of its writes applied.
            } else {
                input.apply(result)
                apply(result.fieldChanges, to: &operation)
            }
            // Secrets a faulty step declared are discarded with its writes, but still kept out of its messages.
            let declared = (result.componentOverrides.map(\.override) + result.globalOverrides).filter(\.secret).map(
                \.value
            )
            let scrubber = SecretScrubber(input.secretValues + declared)
            let pluginStep = step.pluginStep
            for line in result.logs {
                logger.log(
                    level: LogLevels.swiftLog(line.level),
                    "\(scrubber.scrub(line.message))",
                    metadata: [
                        "operation": "\(operation.id)", "step": "\(step.name)",
                        "plugin": "\(pluginStep?.plugin ?? "stephost")",
                    ]
                )
            }
            let (outcomeName, message) = Self.describe(result.outcome, scrubber: scrubber)
            let run = StepRun(
                operationID: operation.id,
                pass: pass,
                position: index + 1,
                step: step.name,
                plugin: pluginStep?.plugin,
                pluginFileHash: pluginStep?.fileHash,
                outcome: outcomeName,
                startedAt: started,
                durationMilliseconds: milliseconds((ContinuousClock.now - clock).timeInterval),
                message: message
            )
            runs.append(run)
            events(
                .stepFinished(
                    operationID: operation.id,
                    pass: pass,
                    position: index + 1,
                    steps: pipeline.steps.count,
                    run: run
                )
            )

            switch result.outcome {
            case .done:
                // Persist before the next step whenever the step changed the fields.
                if !result.fieldChanges.isEmpty {
                    operation = try await save(operation, runs: runs)
                    runs = []
                }
            case .retry(let delay):
                let wait = delay.map { Double($0) / 1000 } ?? options.defaultRetryDelay.timeInterval
                return try await park(
                    operation,
                    after: wait,
                    reason: "\(step.name) asked to retry: \(message ?? "")",
                    runs: runs
                )
            case .fail, .fault:
                return try await finish(
                    operation,
                    state: .failed,
                    error: LastError(step: step.name, plugin: pluginStep?.plugin, message: message ?? outcomeName),
                    runs: runs
                )
            }
        }
        let runtime = operation.runtimeID.map { "runtime \($0) provisioned" } ?? "provisioned"
        operation.description = "\(runtime) in \(pass) pass\(pass == 1 ? "" : "es")"
        return try await finish(operation, state: .succeeded, error: nil, runs: runs)
    }

    /// Calls a plugin step on a thread of its own; its checkpoints persist the fields from that thread.
    private func runPluginStep(_ step: PluginStep, operation: OperationRecord) async -> StepOutcome {
        let current = Mutex(operation)
        let document = OperationDocument.json(operation)
        let result = await executor.run { [self] in
            step.run(operationJSON: document) { changes in
                // Runs on the plugin's thread, which may block: persist now and let the step go on.
                var updated = operation
                updated.version = current.withLock { $0.version }
                self.apply(changes, to: &updated)
                let toSave = updated
                switch blockingWait({ try await self.save(toSave) }) {
                case .success(let saved):
                    current.withLock { $0 = saved }
                    return true
                case .failure(let error):
                    self.logger.error(
                        "checkpoint failed",
                        metadata: ["operation": "\(operation.id)", "error": "\(error)"]
                    )
                    return false
                }
            }
        }
        var latest = current.withLock { $0 }
        latest.fields = operation.fields
        return StepOutcome(result: result, operation: latest)
    }

    func apply(_ changes: [(key: String, json: String?)], to operation: inout OperationRecord) {
        for change in changes {
            operation.fields[change.key] = change.json
        }
    }

    /// Saves the operation (optimistic on its version) and renews this host's claim.
    func save(_ operation: OperationRecord, runs: [StepRun] = []) async throws -> OperationRecord {
        var updated = operation
        let now = Date()
        updated.updatedAt = now
        if !updated.state.isFinal {
            updated.claimedBy = owner.description
            updated.claimedUntil = now.addingTimeInterval(options.lease.timeInterval)
        }
        return try await store.save(updated, stepRuns: runs)
    }

    /// Ends the pass with the operation parked until its next attempt.
    private func park(
        _ operation: OperationRecord,
        after wait: TimeInterval,
        reason: String,
        runs: [StepRun]
    ) async throws
        -> OperationRecord
    {
        var parked = operation
        // Never park past the deadline: the pass at the deadline fails the operation.
        let due = min(Date().addingTimeInterval(wait), operation.deadline)
        parked.nextAttemptAt = due
        parked.description = "waiting for pass \(operation.attempt + 1): \(reason)"
        parked.claimedBy = nil
        parked.claimedUntil = nil
        parked.updatedAt = Date()
        let saved = try await store.save(parked, stepRuns: runs)
        events(.parked(operationID: saved.id, until: due, reason: reason))
        return saved
    }

    private func finish(
        _ operation: OperationRecord,
        state: OperationState,
        error: LastError?,
        runs: [StepRun]
    ) async throws
        -> OperationRecord
    {
        var finished = operation
        finished.state = state
        finished.lastError = error
        finished.nextAttemptAt = nil
        finished.claimedBy = nil
        finished.claimedUntil = nil
        finished.updatedAt = Date()
        if let error {
            finished.description = "failed at step \(error.step): \(error.message)"
        }
        let saved = try await store.save(finished, stepRuns: runs)
        logger.info(
            "operation \(state.rawValue)",
            metadata: ["operation": "\(saved.id)", "passes": "\(saved.attempt)", "error": "\(error?.message ?? "-")"]
        )
        events(.finished(saved))
        return saved
    }

    static func describe(_ outcome: StepResult.Outcome, scrubber: SecretScrubber) -> (String, String?) {
        switch outcome {
        case .done: ("done", nil)
        case .retry(let delay): ("retry", delay.map { "after \($0) ms" } ?? "after the default delay")
        case .fail(let message): ("fail", scrubber.scrub(message))
        case .fault(let message): ("fault", "the plugin broke the ABI: " + scrubber.scrub(message))
        }
    }
}
