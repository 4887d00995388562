import Foundation
import StepHostABI
public import StepHostCore
public import StepHostStorage

/// The built-in `create_runtime` step (weight 100): turns the parameters and what the steps before it
/// contributed into a provisioning request, and sends it to the Runtime Provisioner at most once.
///
/// Sending is a durable two-phase step. The attempt (idempotency key, number, pass, time) is recorded through a
/// checkpoint, under this host's claim, before the request leaves: a host that lost its claim cannot record it
/// and so never sends. The answer is recorded the same way as soon as it arrives. Later passes then only ask
/// the provisioner how provisioning goes: `Succeeded` is done, `Pending`/`InProgress` a retry after the poll
/// interval, `Failed` a failure.
///
/// An attempt whose outcome is unknown (the host died after recording it, the request timed out, the
/// connection was lost before the answer) is never sent again blindly: the operation fails with where to look
/// for the runtime, unless the backend is declared idempotent (``ProvisionerBackend/isIdempotent``). An attempt
/// that certainly had no effect (the connection was refused, HTTP 408, 429, 503) is a retry.
public struct CreateRuntimeStep: Step {
    /// The step's name, weight and provenance, from `stephost.h`.
    public static let identity = StepIdentity(
        name: STEPHOST_CREATE_RUNTIME_NAME,
        weight: Int(STEPHOST_CREATE_RUNTIME_WEIGHT),
        provenance: .builtIn
    )

    private let provisioner: any ProvisionerBackend
    private let clock: any HostClock
    private let answers: (any ProvisionerAnswerLog)?

    /// - Parameter answers: where an answer goes that cannot be recorded with its operation (the claim was lost
    ///   meanwhile), so that what the provisioner created is still tracked.
    public init(
        provisioner: any ProvisionerBackend,
        clock: any HostClock = SystemClock(),
        answers: (any ProvisionerAnswerLog)? = nil
    ) {
        self.provisioner = provisioner
        self.clock = clock
        self.answers = answers
    }

    public var identity: StepIdentity { Self.identity }

    public func run(_ operation: OperationRecord, context: StepContext) async -> StepResult {
        if let provisionerOperationID = operation.runtime.provisionerOperationID {
            return await poll(operation, provisionerOperationID: provisionerOperationID)
        }
        return await send(operation, context: context)
    }

    /// Asks how the accepted request goes. A failure's message need not name what the provisioner accepted: the
    /// engine adds that to every failure of an operation whose request was accepted.
    private func poll(_ operation: OperationRecord, provisionerOperationID: String) async -> StepResult {
        let state: ProvisionerOperation
        do {
            state = try await provisioner.status(
                provisionerOperationID: provisionerOperationID,
                operationID: operation.id
            )
        } catch {
            switch error.kind {
            case .transient, .unknown:
                var result = StepResult(outcome: .retry(after: provisioner.pollInterval))
                result.logs.append(StepLogLine(.warning, "\(error.message); asking again"))
                return result
            case .rejected:
                return StepResult(outcome: .fail(error.message))
            }
        }
        guard state.id == provisionerOperationID else {
            return StepResult(
                outcome: .fail(
                    "the provisioner answered runtimeOperationStatus about operation \(state.id), not the one asked "
                        + "about (\(provisionerOperationID)); its answer is not taken"
                )
            )
        }
        var runtime = operation.runtime
        if let runtimeID = state.runtimeID { runtime.runtimeID = runtimeID }
        var result = outcome(of: state)
        if runtime != operation.runtime { result.changes.runtime = runtime }
        return result
    }

    /// Records an attempt, sends the request, and records the answer.
    private func send(_ operation: OperationRecord, context: StepContext) async -> StepResult {
        var runtime = operation.runtime
        if let open = runtime.attempts.last(where: \.mayHaveBeenAccepted), !provisioner.isIdempotent {
            return StepResult(outcome: .fail(Self.uncertain(open, operationID: operation.id)))
        }
        var logs: [StepLogLine] = []
        let request = ProvisioningRequest(
            parameters: operation.parameters,
            input: context.input,
            operationID: operation.id
        )
        if let undeclared = request.runtimeInput.labels?[ProvisioningRequest.undeclaredComponentsLabel] {
            logs.append(
                StepLogLine(
                    .warning,
                    "overrides name components the parameters do not declare (\(undeclared)); they are sent in "
                        + "the default namespace \(operation.parameters.defaultNamespace)"
                )
            )
        }
        // The record of what is sent is made before it is sent: a request that cannot be recorded is not sent.
        do {
            runtime.provisioningRequest = try request.redacted.json()
        } catch {
            return StepResult(outcome: .fail("the provisioning request cannot be written as JSON: \(error)"))
        }
        var attempt = ProvisioningAttempt(
            number: runtime.attempts.count + 1,
            pass: context.pass,
            idempotencyKey: operation.id,
            startedAt: clock.now
        )
        runtime.attempts.append(attempt)
        // Phase one: the intent, under this host's claim. Refused (the claim is lost, another writer changed the
        // operation, the store failed), nothing is sent.
        do {
            try await context.checkpoint(OperationChanges(runtime: runtime))
        } catch {
            var result = StepResult(outcome: .retry(after: provisioner.pollInterval))
            result.logs = logs
            result.logs.append(
                StepLogLine(.warning, "the provisioning attempt could not be recorded, so it was not sent: \(error)")
            )
            return result
        }

        let state: ProvisionerOperation
        var result: StepResult
        do {
            state = try await provisioner.provision(request, operationID: operation.id)
            attempt.outcome = .accepted
            attempt.provisionerOperationID = state.id
            attempt.runtimeID = state.runtimeID
            attempt.message = state.message
            runtime.provisionerOperationID = state.id
            if let runtimeID = state.runtimeID { runtime.runtimeID = runtimeID }
            runtime.attempts[runtime.attempts.count - 1] = attempt
            result = outcome(of: state)
        } catch {
            attempt.message = error.message
            switch error.kind {
            case .transient:
                attempt.outcome = .notAccepted
                result = StepResult(outcome: .retry(after: provisioner.pollInterval))
                logs.append(
                    StepLogLine(.warning, "\(error.message); the request had no effect, sending it again later")
                )
            case .unknown:
                attempt.outcome = .unknown
                if provisioner.isIdempotent {
                    result = StepResult(outcome: .retry(after: provisioner.pollInterval))
                    logs.append(
                        StepLogLine(
                            .warning,
                            "\(error.message); the provisioner is declared idempotent, so the request is sent again "
                                + "later with the same Idempotency-Key"
                        )
                    )
                } else {
                    result = StepResult(outcome: .fail(Self.uncertain(attempt, operationID: operation.id)))
                }
            case .rejected:
                attempt.outcome = .rejected
                result = StepResult(outcome: .fail(error.message))
            }
            runtime.attempts[runtime.attempts.count - 1] = attempt
        }
        // Phase two: the answer, at once. If this fails the engine's own save after the step fails too, and the
        // attempt stays `sending`: the next pass then treats it as unknown, never as "not sent".
        result.changes.runtime = runtime
        do {
            try await context.checkpoint(result.changes)
        } catch {
            if let id = attempt.provisionerOperationID {
                do {
                    try await answers?.recordProvisionerAnswer(
                        operationID: operation.id,
                        attempt: attempt.number,
                        provisionerOperationID: id,
                        runtimeID: attempt.runtimeID,
                        at: clock.now
                    )
                } catch let logError {
                    logs.append(StepLogLine(.error, "the answer could not be recorded apart either: \(logError)"))
                }
            }
            logs.append(
                StepLogLine(
                    .error,
                    "the provisioner's answer could not be recorded (\(error)); attempt \(attempt.number): "
                        + "\(attempt.outcome.rawValue)\(attempt.provisionerOperationID.map { ", provisioner operation \($0)" } ?? "")"
                )
            )
        }
        result.logs = logs + result.logs
        return result
    }

    /// The step's result for the provisioner's state of an accepted request.
    private func outcome(of state: ProvisionerOperation) -> StepResult {
        var result: StepResult
        switch state.state {
        case .succeeded:
            result = StepResult(outcome: .done)
        case .pending, .inProgress:
            result = StepResult(outcome: .retry(after: provisioner.pollInterval))
        case .failed:
            result = StepResult(
                outcome: .fail("the provisioner reports provisioning failed: \(state.message ?? "no message")")
            )
        }
        result.logs.append(StepLogLine(.info, "provisioner operation \(state.id): \(state.state.rawValue)"))
        return result
    }

    /// Why an attempt whose outcome is unknown ends the operation.
    static func uncertain(_ attempt: ProvisioningAttempt, operationID: String) -> String {
        let sent = ISO8601DateFormatter().string(from: attempt.startedAt)
        let why =
            attempt.outcome == .sending
            ? "the host stopped (or lost its claim) before the answer was recorded"
            : (attempt.message ?? "no answer")
        return "the provisioning request (attempt \(attempt.number), sent \(sent) with Idempotency-Key "
            + "\(attempt.idempotencyKey)) may have been accepted: \(why). stephost sends it at most once: look for the "
            + "runtime labelled stephost.io/operation-id=\(operationID) at the provisioner before provisioning "
            + "again, or declare the provisioner idempotent (--provisioner-idempotent) if it deduplicates by that key"
    }
}
