import Foundation
import StepHostABI
public import StepHostCore
import StepHostSystem

extension PluginStep {
    /// Calls the plugin's run function for one operation and copies out what it reported.
    ///
    /// This blocks for as long as the plugin does: call it from a thread of its own, never from
    /// Swift's cooperative pool. `checkpoint` is called when the step asks to persist its fields now,
    /// with the field changes so far; it returns whether they were persisted. It has no default: a step
    /// told its fields are safe when they are not would lose them in a crash.
    ///
    /// - Parameter operationJSON: the operation document (see ``OperationDocument``), as UTF-8 JSON.
    /// - Parameters:
    ///   - minimumLogLevel: log lines below it are dropped as they arrive.
    ///   - log: receives each log line as the step writes it, with the secrets the step declared so far. Without
    ///     it, lines are kept in the result, at most ``StepCallRecorder/maximumBufferedLogLines`` of them.
    public func run(
        operationJSON: [UInt8],
        minimumLogLevel: StepLogLevel = .debug,
        log: ((StepLogLine, _ declaredSecrets: [String]) -> Void)? = nil,
        cancellation: StepCancellation? = nil,
        checkpoint: @escaping (_ changes: OperationChanges) -> Bool
    ) -> StepResult {
        guard let entry else {
            return StepResult(outcome: .fault("step \(name) of plugin \(plugin.name) is not loaded in this process"))
        }
        let recorder = StepCallRecorder(
            checkpoint: checkpoint,
            minimumLogLevel: minimumLogLevel,
            log: log,
            cancellation: cancellation
        )
        let context = CallContexts.shared.begin(recorder)
        var services = StepCallRecorder.services
        let code = withUnsafePointer(to: &services) { services in
            operationJSON.withUnsafeBufferPointer { json in
                json.withMemoryRebound(to: CChar.self) { json in
                    var call = stephost_step_call(
                        struct_size: UInt32(MemoryLayout<stephost_step_call>.size),
                        operation_json: json.baseAddress,
                        operation_json_len: json.count,
                        ctx: context,
                        services: services
                    )
                    stephost_enter_plugin_code()
                    defer { stephost_leave_plugin_code() }
                    return entry.run(entry.context, &call)
                }
            }
        }
        if let misuse = CallContexts.shared.end(context) { recorder.recordMisuse(misuse) }
        return recorder.result(for: code)
    }
}

/// Collects what a step reports during one call.
///
/// Unchecked: it is used only on the thread that runs its call. `CallContexts` hands it to a callback only
/// on that thread, and only while the call runs.
final class StepCallRecorder: @unchecked Sendable {
    /// Field keys with this prefix belong to the host.
    static let reservedFieldPrefix = "stephost"
    static let maximumFieldKeyLength = 128

    private var result = StepResult(outcome: .done)
    private var retryAfter: UInt64?
    private var error: String?
    /// The first ABI violation; it turns the outcome into a fault.
    private var fault: String?
    private let checkpoint: (OperationChanges) -> Bool
    private let cancellation: StepCancellation?
    private let minimumLogLevel: StepLogLevel
    private let sink: ((StepLogLine, [String]) -> Void)?
    /// Log lines kept for the result when there is no sink, and how many more were dropped.
    private var droppedLogLines = 0

    /// The most log lines one call keeps in its result when they are not written as they arrive.
    static let maximumBufferedLogLines = 1000

    init(
        checkpoint: @escaping (OperationChanges) -> Bool,
        minimumLogLevel: StepLogLevel = .debug,
        log: ((StepLogLine, [String]) -> Void)? = nil,
        cancellation: StepCancellation? = nil
    ) {
        self.checkpoint = checkpoint
        self.cancellation = cancellation
        self.minimumLogLevel = minimumLogLevel
        self.sink = log
    }

    func result(for code: stephost_outcome) -> StepResult {
        var result = self.result
        if droppedLogLines > 0 {
            result.logs.append(StepLogLine(.warning, "\(droppedLogLines) more log lines of this step were dropped"))
        }
        if let fault {
            result.outcome = .fault("the plugin broke the ABI: " + fault)
            return result
        }
        switch code {
        case STEPHOST_OUTCOME_DONE: result.outcome = .done
        case STEPHOST_OUTCOME_RETRY: result.outcome = .retry(after: retryAfter.map(Self.duration))
        case STEPHOST_OUTCOME_FAIL: result.outcome = .fail(error ?? "the step failed without a message")
        default: result.outcome = .fault("the plugin broke the ABI: the step returned the unknown outcome code \(code)")
        }
        return result
    }

    /// A delay in milliseconds as a duration; delays beyond what a duration holds are capped (the
    /// operation's deadline comes first anyway).
    private static func duration(_ milliseconds: UInt64) -> Duration {
        .milliseconds(Int64(clamping: milliseconds))
    }

    /// A callback that used a context it may not use: a fault of this call's step.
    func recordMisuse(_ message: String) {
        _ = recordFault(message)
    }

    private func recordFault(_ message: String) -> stephost_status {
        if fault == nil { fault = message }
        return STEPHOST_STATUS_INVALID_ARGUMENT
    }

    private func fieldKey(_ pointer: UnsafePointer<CChar>?, _ length: Int) -> Result<String, NameProblem> {
        let key: String
        switch Names.read(pointer, length, limit: Self.maximumFieldKeyLength) {
        case .success(let text) where !text.isEmpty: key = text
        case .success: return .failure(NameProblem("the field key is empty"))
        case .failure(let problem):
            return .failure(
                NameProblem("the field key \(problem) (1 to \(Self.maximumFieldKeyLength) bytes of UTF-8 are expected)")
            )
        }
        guard !key.hasPrefix(Self.reservedFieldPrefix) else {
            return .failure(
                NameProblem("field '\(key)' uses the prefix '\(Self.reservedFieldPrefix)', reserved for the host")
            )
        }
        return .success(key)
    }

    /// The most bytes of one piece of text (a value, a key, a component) a step may hand over.
    static let maximumTextLength = 1 << 20

    /// The most bytes one run may write in all (field keys and values, overrides, labels, each counted as
    /// written): a step that writes more is a fault, so no plugin can make the host hold an unbounded amount
    /// for it, however many calls it makes. An operation keeps at most 1 MiB of fields anyway.
    static let maximumWrittenBytes = 16 << 20
    private var writtenBytes = 0

    /// Counts `bytes` more written; the fault once the run has written too much.
    private func written(_ bytes: Int, by callback: String) -> stephost_status? {
        writtenBytes += bytes
        guard writtenBytes > Self.maximumWrittenBytes else { return nil }
        return recordFault(
            "\(callback): the step wrote more than \(Self.maximumWrittenBytes) bytes of fields, overrides and labels "
                + "in one run"
        )
    }

    /// Plugin text up to 1 MiB, or what is wrong with it.
    private func text(_ pointer: UnsafePointer<CChar>?, _ length: Int) -> Result<String, NameProblem> {
        Names.read(pointer, length, limit: Self.maximumTextLength)
    }

    /// Plugin text that must not be empty, or the fault naming `what` and what is wrong.
    private func nonEmpty(
        _ what: String,
        _ pointer: UnsafePointer<CChar>?,
        _ length: Int
    ) -> Result<String, NameProblem> {
        switch text(pointer, length) {
        case .success(let text) where !text.isEmpty: .success(text)
        case .success: .failure(NameProblem("\(what) is empty"))
        case .failure(let problem): .failure(NameProblem("\(what) \(problem)"))
        }
    }

    func setField(
        _ keyPointer: UnsafePointer<CChar>?,
        _ keyLength: Int,
        _ json: UnsafePointer<CChar>?,
        _ jsonLength: Int
    ) -> stephost_status {
        let key: String
        switch fieldKey(keyPointer, keyLength) {
        case .success(let valid): key = valid
        case .failure(let problem): return recordFault("set_field: \(problem)")
        }
        let text: String
        switch self.text(json, jsonLength) {
        case .success(let valid): text = valid
        case .failure(let problem): return recordFault("set_field: the value of field '\(key)' \(problem)")
        }
        if let problem = FieldValue.problem(text) {
            return recordFault("set_field: the value of field '\(key)' \(problem)")
        }
        if let fault = written(key.utf8.count + text.utf8.count, by: "set_field") { return fault }
        result.changes.fields.append(FieldChange(key: key, json: text))
        return STEPHOST_STATUS_OK
    }

    func removeField(_ key: UnsafePointer<CChar>?, _ keyLength: Int) -> stephost_status {
        switch fieldKey(key, keyLength) {
        case .success(let key):
            if let fault = written(key.utf8.count, by: "remove_field") { return fault }
            result.changes.fields.append(FieldChange(key: key, json: nil))
            return STEPHOST_STATUS_OK
        case .failure(let problem):
            return recordFault("remove_field: \(problem)")
        }
    }

    func addOverride(
        component: (UnsafePointer<CChar>?, Int)?,
        key: (UnsafePointer<CChar>?, Int),
        value: (UnsafePointer<CChar>?, Int),
        secret: Bool
    ) -> stephost_status {
        let what = component == nil ? "add_global_override" : "add_component_override"
        let keyText: String
        switch nonEmpty("the key", key.0, key.1) {
        case .success(let valid): keyText = valid
        case .failure(let problem): return recordFault("\(what): \(problem)")
        }
        let valueText: String
        switch text(value.0, value.1) {
        case .success(let valid): valueText = valid
        case .failure(let problem): return recordFault("\(what): the value of '\(keyText)' \(problem)")
        }
        let override = Override(key: keyText, value: valueText, secret: secret)
        if let fault = written(keyText.utf8.count + valueText.utf8.count, by: what) { return fault }
        if let component {
            let componentText: String
            switch nonEmpty("the component", component.0, component.1) {
            case .success(let valid): componentText = valid
            case .failure(let problem): return recordFault("\(what): \(problem)")
            }
            result.componentOverrides.append(ComponentOverride(component: componentText, override: override))
        } else {
            result.globalOverrides.append(override)
        }
        return STEPHOST_STATUS_OK
    }

    func addLabel(
        _ key: (UnsafePointer<CChar>?, Int),
        _ value: (UnsafePointer<CChar>?, Int)
    ) -> stephost_status {
        let keyText: String
        switch nonEmpty("the key", key.0, key.1) {
        case .success(let valid): keyText = valid
        case .failure(let problem): return recordFault("add_label: \(problem)")
        }
        switch text(value.0, value.1) {
        case .success(let valueText):
            if let fault = written(keyText.utf8.count + valueText.utf8.count, by: "add_label") { return fault }
            result.labels.append((keyText, valueText))
        case .failure(let problem): return recordFault("add_label: the value of '\(keyText)' \(problem)")
        }
        return STEPHOST_STATUS_OK
    }

    func log(_ level: stephost_log_level, _ message: UnsafePointer<CChar>?, _ length: Int) {
        let level = LogLevels.step(level)
        guard level.rawValue >= minimumLogLevel.rawValue else { return }  // dropped at once, never buffered
        let line = StepLogLine(level, Names.message(message, length))
        if let sink {
            sink(line, result.declaredSecrets)
        } else if result.logs.count < Self.maximumBufferedLogLines {
            result.logs.append(line)
        } else {
            droppedLogLines += 1
        }
    }

    func checkpointNow() -> stephost_status {
        result.checkpoints += 1
        let changes = result.changes
        // Never after the deadline: the host has already failed the operation, and a late write must not land.
        guard let cancellation else { return checkpoint(changes) ? STEPHOST_STATUS_OK : STEPHOST_STATUS_ERROR }
        // nil once cancelled: refused, never persisted outside the gate.
        let persisted = cancellation.unlessCancelled { checkpoint(changes) } ?? false
        return persisted ? STEPHOST_STATUS_OK : STEPHOST_STATUS_ERROR
    }

    func isCancelled() -> Int32 {
        cancellation?.isCancelled == true ? 1 : 0
    }

    func setRetryAfter(_ milliseconds: UInt64) { retryAfter = milliseconds }

    func setError(_ message: UnsafePointer<CChar>?, _ length: Int) {
        guard message != nil || length == 0 else {
            // Not an empty message: a broken call, which would otherwise fail the operation with no reason.
            _ = recordFault("set_error: the message is a null pointer with length \(Names.size(length))")
            return
        }
        let text = Names.message(message, length)
        error = text.isEmpty ? nil : text
    }

    /// The callbacks, as C function pointers that find the recorder through the call's context.
    static let services = stephost_call_services(
        struct_size: UInt32(MemoryLayout<stephost_call_services>.size),
        set_field: { context, key, keyLength, json, jsonLength in
            recorder(context, "set_field")?.setField(key, keyLength, json, jsonLength) ?? STEPHOST_STATUS_ERROR
        },
        remove_field: { context, key, keyLength in
            recorder(context, "remove_field")?.removeField(key, keyLength) ?? STEPHOST_STATUS_ERROR
        },
        add_component_override: { context, component, componentLength, key, keyLength, value, valueLength, secret in
            recorder(context, "add_component_override")?.addOverride(
                component: (component, componentLength),
                key: (key, keyLength),
                value: (value, valueLength),
                secret: secret != 0
            ) ?? STEPHOST_STATUS_ERROR
        },
        add_global_override: { context, key, keyLength, value, valueLength, secret in
            recorder(context, "add_global_override")?.addOverride(
                component: nil,
                key: (key, keyLength),
                value: (value, valueLength),
                secret: secret != 0
            ) ?? STEPHOST_STATUS_ERROR
        },
        add_label: { context, key, keyLength, value, valueLength in
            recorder(context, "add_label")?.addLabel((key, keyLength), (value, valueLength)) ?? STEPHOST_STATUS_ERROR
        },
        log: { context, level, message, length in
            recorder(context, "log")?.log(level, message, length)
        },
        checkpoint: { context in
            recorder(context, "checkpoint")?.checkpointNow() ?? STEPHOST_STATUS_ERROR
        },
        set_retry_after: { context, milliseconds in
            recorder(context, "set_retry_after")?.setRetryAfter(milliseconds)
        },
        set_error: { context, message, length in
            recorder(context, "set_error")?.setError(message, length)
        },
        is_cancelled: { context in
            recorder(context, "is_cancelled")?.isCancelled() ?? 0
        }
    )
}

private func recorder(_ context: UnsafeMutableRawPointer?, _ callback: String) -> StepCallRecorder? {
    CallContexts.shared.recorder(context, callback)
}
