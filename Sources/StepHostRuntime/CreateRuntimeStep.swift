import Foundation
import StepHostABI
public import StepHostCore

/// The built-in `create_runtime` step (weight 100): turns the parameters and what the steps before it
/// contributed into a provisioning request, and sends it to the Runtime Provisioner once.
///
/// On the first pass that reaches it, it builds the request, sends it, and reports the provisioner's
/// operation id as a change the engine stores at once: no later pass sends again. On later passes it only asks the
/// provisioner how provisioning goes: `Succeeded` is done, `Pending`/`InProgress` a retry after the poll
/// interval, `Failed` a failure. Network trouble is a retry; a rejected request fails the operation.
public struct CreateRuntimeStep: Step {
    /// The step's name, weight and provenance, from `stephost.h`.
    public static let identity = StepIdentity(
        name: STEPHOST_CREATE_RUNTIME_NAME,
        weight: Int(STEPHOST_CREATE_RUNTIME_WEIGHT),
        provenance: .builtIn
    )

    private let provisioner: any ProvisionerBackend

    public init(provisioner: any ProvisionerBackend) {
        self.provisioner = provisioner
    }

    public var identity: StepIdentity { Self.identity }

    public func run(_ operation: OperationRecord, context: StepContext) async -> StepResult {
        var runtime = operation.runtime
        var logs: [StepLogLine] = []
        let state: ProvisionerOperation

        if let provisionerOperationID = runtime.provisionerOperationID {
            do {
                state = try await provisioner.status(
                    provisionerOperationID: provisionerOperationID,
                    operationID: operation.id
                )
            } catch {
                return result(for: error)
            }
        } else {
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
            let record: String
            do {
                record = try request.redacted.json()
            } catch {
                return StepResult(outcome: .fail("the provisioning request cannot be written as JSON: \(error)"))
            }
            do {
                state = try await provisioner.provision(request, operationID: operation.id)
            } catch {
                return result(for: error)
            }
            runtime = RuntimeRecord(
                provisionerOperationID: state.id,
                runtimeID: state.runtimeID,
                provisioningRequest: record
            )
        }
        if let runtimeID = state.runtimeID { runtime.runtimeID = runtimeID }

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
        result.logs = logs
        // The engine persists changed runtime facts as soon as the step returns, before the next step runs:
        // a later pass finds the provisioner's operation id and only polls.
        if runtime != operation.runtime { result.changes.runtime = runtime }
        result.logs.append(StepLogLine(.info, "provisioner operation \(state.id): \(state.state.rawValue)"))
        return result
    }

    private func result(for error: ProvisionerError) -> StepResult {
        switch error.kind {
        case .transient:
            var result = StepResult(outcome: .retry(after: provisioner.pollInterval))
            result.logs.append(StepLogLine(.warning, "\(error.message); trying again"))
            return result
        case .rejected:
            return StepResult(outcome: .fail(error.message))
        }
    }
}
