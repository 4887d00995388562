import StepHostABI

/// The C function every Swift step's descriptor points at: it finds the step behind `step_ctx`,
/// runs it, and turns its outcome or error into the ABI's outcome code. Nothing unwinds past it.
let runStep: stephost_step_run_fn = { stepContext, call in
    guard let stepContext, let call else { return STEPHOST_OUTCOME_FAIL }
    let step = Unmanaged<StepBox>.fromOpaque(stepContext).takeUnretainedValue().step
    let operation: ProvisioningOperation
    do {
        operation = try ProvisioningOperation(call: call)
    } catch {
        return reportFailure("\(error)", call: call)
    }
    let outcome: Outcome
    do {
        outcome = try step.run(operation)
    } catch {
        operation.setError("\(error)")
        return STEPHOST_OUTCOME_FAIL
    }
    switch outcome {
    case .done:
        return STEPHOST_OUTCOME_DONE
    case .retry(let delay):
        operation.setRetryAfter(milliseconds: milliseconds(delay))
        return STEPHOST_OUTCOME_RETRY
    case .fail(let message):
        operation.setError(message)
        return STEPHOST_OUTCOME_FAIL
    }
}

/// Reports a failure when the call could not even be read as an operation, through whatever part of the
/// call and its services the host declared (a callback past a struct_size is absent).
private func reportFailure(_ message: String, call: UnsafePointer<stephost_step_call>) -> stephost_outcome {
    var hostCall = stephost_step_call()
    HostStructs.stepCall.copy(call, into: &hostCall)
    var callServices = stephost_call_services()
    if let services = hostCall.services {
        HostStructs.callServices.copy(services, into: &callServices)
    }
    if let setError = callServices.set_error {
        var message = message
        message.withUTF8 { bytes in
            bytes.withMemoryRebound(to: CChar.self) { setError(hostCall.ctx, $0.baseAddress, $0.count) }
        }
    }
    return STEPHOST_OUTCOME_FAIL
}

/// A delay in whole milliseconds, never negative.
private func milliseconds(_ duration: Duration) -> UInt64 {
    let (seconds, attoseconds) = duration.components
    guard seconds >= 0 else { return 0 }
    let (total, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1000)
    return overflow ? UInt64.max : total + UInt64(attoseconds / 1_000_000_000_000_000)
}
