import Foundation
import Logging
import StepHostLoader
import StepHostRuntime
import StepHostStorage

extension Engine {
    /// The built-in `create_runtime` step.
    ///
    /// On the first pass that reaches it, it builds the provisioning request from the parameters and what
    /// the steps before it contributed, sends it once, and stores the provisioner's operation id at once.
    /// On later passes it never sends again: it asks the provisioner how the provisioning goes
    /// (`Succeeded` is done, `InProgress` a retry after the poll interval, `Failed` a failure).
    func createRuntime(operation: OperationRecord, input: RuntimeInput) async throws -> StepOutcome {
        var operation = operation
        let pollMilliseconds = UInt64(provisioner.pollInterval.timeInterval * 1000)
        let state: ProvisionerOperation

        if let provisionerOperationID = operation.provisionerOperationID {
            do {
                state = try await provisioner.status(
                    provisionerOperationID: provisionerOperationID,
                    operationID: operation.id
                )
            } catch {
                return StepOutcome(result: Self.result(for: error, poll: pollMilliseconds), operation: operation)
            }
        } else {
            let parameters: ProvisioningParameters
            do {
                parameters = try ProvisioningParameters(json: operation.parameters)
            } catch {
                return StepOutcome(result: StepResult(outcome: .fail("\(error)")), operation: operation)
            }
            let request = ProvisioningRequest(parameters: parameters, input: input, operationID: operation.id)
            if let undeclared = request.runtimeInput.labels?[ProvisioningRequest.undeclaredComponentsLabel] {
                logger.warning(
                    "overrides name components the parameters do not declare; they are sent in the default namespace",
                    metadata: ["operation": "\(operation.id)", "components": "\(undeclared)"]
                )
            }
            do {
                state = try await provisioner.provision(request, operationID: operation.id)
            } catch {
                return StepOutcome(result: Self.result(for: error, poll: pollMilliseconds), operation: operation)
            }
            // Store the provisioner's id at once: no later pass may send again.
            operation.provisionerOperationID = state.id
            operation.runtimeID = state.runtimeID
            operation.provisioningRequest = request.redacted.json()
            operation = try await save(operation)
        }
        if let runtimeID = state.runtimeID, operation.runtimeID != runtimeID {
            operation.runtimeID = runtimeID
            operation = try await save(operation)
        }
        var result: StepResult
        switch state.state {
        case .succeeded:
            result = StepResult(outcome: .done)
        case .pending, .inProgress:
            result = StepResult(outcome: .retry(afterMilliseconds: pollMilliseconds))
        case .failed:
            result = StepResult(
                outcome: .fail("the provisioner reports provisioning failed: \(state.message ?? "no message")")
            )
        }
        result.logs.append((1, "provisioner operation \(state.id): \(state.state.rawValue)"))
        return StepOutcome(result: result, operation: operation)
    }

    private static func result(for error: ProvisionerError, poll: UInt64) -> StepResult {
        switch error.kind {
        case .transient:
            var result = StepResult(outcome: .retry(afterMilliseconds: poll))
            result.logs.append((2, "\(error.message); trying again"))
            return result
        case .rejected:
            return StepResult(outcome: .fail(error.message))
        }
    }
}
