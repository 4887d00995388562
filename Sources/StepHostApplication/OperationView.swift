public import Foundation
public import StepHostCore
public import StepHostStorage

/// Renders operations for `operations list` and `operations show`, as text or JSON.
///
/// Secret values never get here: overrides are not persisted and the stored request is redacted.
public enum OperationView {
    public static func summary(_ operation: OperationRecord) -> [String: Any] {
        var object: [String: Any] = [
            "id": operation.id,
            "instance_id": operation.instanceID,
            "type": operation.type,
            "state": operation.state.rawValue,
            "description": operation.description,
            "created_at": timestamp(operation.createdAt),
            "updated_at": timestamp(operation.updatedAt),
            "version": operation.version,
            "passes": operation.passes,
            "dropped_step_runs": operation.droppedStepRuns,
            "deadline": timestamp(operation.deadline),
            "disabled_plugins": operation.disabledPlugins,
        ]
        object["next_pass_at"] = operation.nextPassAt.map(timestamp)
        object["runtime_id"] = operation.runtime.runtimeID
        object["provisioner_operation_id"] = operation.runtime.provisionerOperationID
        object["provisioner_operation_ids"] = operation.runtime.provisionerOperationIDs
        if let error = operation.lastError {
            var last: [String: Any] = ["step": error.step, "message": error.message]
            last["plugin"] = error.plugin
            object["last_error"] = last
        }
        return object
    }

    public static func detail(_ operation: OperationRecord, runs: [StepRun], claim: Claim? = nil) -> [String: Any] {
        var object = summary(operation)
        if let deaths = operation.hostDeaths {
            object["host_deaths"] = [
                "count": deaths.count, "step": deaths.step.step, "plugin": deaths.step.plugin as Any,
                "plugin_file_sha256": deaths.step.pluginFileHash as Any, "pass": deaths.step.pass,
                "message": deaths.described,
            ]
        }
        if let claim, let running = claim.running {
            let died = claim.isFree(at: Date())
            object["running_step"] = [
                "step": running.step, "plugin": running.plugin as Any, "pass": running.pass,
                "started_at": timestamp(running.startedAt), "host": claim.owner.description,
                "host_died": died, "message": runningLine(running, claim: claim, died: died),
            ]
        }
        object["parameters"] = parse(operation.parameters.json)
        // Placed by `render`: field keys are bytes, and a Swift dictionary would merge keys that differ in bytes.
        object["fields"] = fieldsPlaceholder
        object["provisioning_request"] = operation.runtime.provisioningRequest.map(parse)
        object["provisioning_attempts"] = operation.runtime.attempts.map { attempt in
            var entry: [String: Any] = [
                "number": attempt.number,
                "pass": attempt.pass,
                "idempotency_key": attempt.idempotencyKey,
                "started_at": timestamp(attempt.startedAt),
                "outcome": attempt.outcome.rawValue,
            ]
            entry["provisioner_operation_id"] = attempt.provisionerOperationID
            entry["runtime_id"] = attempt.runtimeID
            entry["message"] = attempt.message
            return entry
        }
        object["steps"] = runs.map { run in
            var entry: [String: Any] = [
                "pass": run.pass,
                "position": run.position,
                "step": run.step,
                "outcome": run.outcome.rawValue,
                "started_at": timestamp(run.startedAt),
                "duration_ms": run.durationMilliseconds,
            ]
            entry["plugin"] = run.plugin
            entry["plugin_file_sha256"] = run.pluginFileHash
            entry["plugin_version"] = run.pluginVersion
            entry["message"] = run.message
            return entry
        }
        return object
    }

    /// What the claim says about the step running now, or the one its host died in.
    public static func runningLine(_ running: RunningStep, claim: Claim, died: Bool) -> String {
        died
            ? "the host died while running \(running.described), pass \(running.pass) (host \(claim.owner)); the next "
                + "`stephost run` takes the operation over"
            : "\(running.described), pass \(running.pass), since \(timestamp(running.startedAt)) on host \(claim.owner)"
    }

    public static func text(_ operation: OperationRecord, runs: [StepRun], claim: Claim? = nil) -> String {
        var lines = [
            "operation    \(operation.id)",
            "instance     \(operation.instanceID)",
            "type         \(operation.type)",
            "state        \(operation.state.rawValue)",
            "description  \(operation.description)",
            "created      \(timestamp(operation.createdAt))",
            "updated      \(timestamp(operation.updatedAt))",
            "passes       \(operation.passes)",
            "next pass    \(operation.nextPassAt.map(timestamp) ?? "-")",
            "deadline     \(timestamp(operation.deadline))",
            "runtime      \(operation.runtime.runtimeID ?? "-")",
            "provisioner  \(operation.runtime.provisionerOperationID ?? "-")",
            "version      \(operation.version)",
        ]
        if let claim, let running = claim.running {
            let died = claim.isFree(at: Date())
            lines.append("\(died ? "interrupted " : "running     ") \(runningLine(running, claim: claim, died: died))")
        }
        if let deaths = operation.hostDeaths {
            lines.append("host deaths  \(deaths.described)")
        }
        if !operation.disabledPlugins.isEmpty {
            lines.append("disabled     \(operation.disabledPlugins.joined(separator: ", ")) (ran without their steps)")
        }
        if let error = operation.lastError {
            lines.append(
                "last error   step \(error.step)\(error.plugin.map { " (plugin \($0))" } ?? ""): \(error.message)"
            )
        }
        lines.append("parameters   \(operation.parameters.json)")
        lines.append("fields")
        for (key, value) in operation.fields.sorted(by: { $0.key < $1.key }) {
            lines.append("  \(key) = \(value)")
        }
        lines.append(
            operation.droppedStepRuns == 0
                ? "steps"
                : "steps (\(operation.droppedStepRuns) runs of passes between the first and the last "
                    + "\(StepHistory.keptPasses) are not kept)"
        )
        // The plugin file's SHA-256, its first 12 digits (as `list-plugins` shows it; `--json` has it whole).
        var rows = [["PASS", "#", "STEP", "PLUGIN", "VERSION", "SHA-256", "OUTCOME", "MS", "MESSAGE"]]
        for run in runs {
            rows.append([
                "\(run.pass)", "\(run.position)", run.step, run.plugin ?? "built-in",
                run.pluginVersion ?? "-", run.pluginFileHash.map { String($0.prefix(12)) } ?? "-", run.outcome.rawValue,
                String(format: "%.1f", run.durationMilliseconds), run.message ?? "",
            ])
        }
        lines += TextTable.lines(rows).map { "  " + $0 }
        if !operation.runtime.attempts.isEmpty {
            lines.append("provisioning attempts (each recorded before it was sent)")
            var attempts = [["#", "PASS", "SENT", "OUTCOME", "PROVISIONER OPERATION", "RUNTIME", "MESSAGE"]]
            for attempt in operation.runtime.attempts {
                attempts.append([
                    "\(attempt.number)", "\(attempt.pass)", timestamp(attempt.startedAt),
                    attempt.outcome == .sending ? "sending (no answer recorded)" : attempt.outcome.rawValue,
                    attempt.provisionerOperationID ?? "-", attempt.runtimeID ?? "-", attempt.message ?? "",
                ])
            }
            lines += TextTable.lines(attempts).map { "  " + $0 }
        }
        lines.append("provisioning request (secrets redacted)")
        lines += (operation.runtime.provisioningRequest.map(pretty) ?? "  (not sent yet)").split(separator: "\n")
            .map(String.init)
        // Field keys, messages and descriptions come from plugins: every line stays one line.
        return lines.map(\.escapingControlCharacters).joined(separator: "\n")
    }

    public static func render(_ value: Any) throws -> String {
        let data = try JSONSerialization.data(
            withJSONObject: value,
            options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        )
        return String(decoding: data, as: UTF8.self)
    }

    /// Stands for the custom fields in ``detail(_:runs:claim:)`` until ``render(_:fields:)`` writes them.
    public static let fieldsPlaceholder = "\u{1}stephost-fields\u{1}"

    /// `value` (a ``detail(_:runs:claim:)``) as pretty JSON, with the custom fields written member by member:
    /// each key exactly as the plugin sent it (bytes), each value as stored.
    public static func render(_ value: [String: Any], fields: [FieldKey: String]) throws -> String {
        let text = try render(value)
        let members = fields.sorted { $0.key < $1.key }.map { "    \(JSONText.quote($0.key.string)) : \($0.value)" }
        let object = members.isEmpty ? "{\n\n  }" : "{\n" + members.joined(separator: ",\n") + "\n  }"
        return text.replacingOccurrences(of: "\"\\u0001stephost-fields\\u0001\"", with: object)
    }

    public static func timestamp(_ date: Date) -> String {
        date.formatted(
            .iso8601.year().month().day().time(includingFractionalSeconds: true).timeZone(separator: .omitted)
        )
    }

    private static func parse(_ json: String) -> Any {
        (try? JSONSerialization.jsonObject(with: Data(json.utf8), options: [.fragmentsAllowed])) ?? json
    }

    private static func pretty(_ json: String) -> String {
        // Only an array or object can be rendered (Foundation traps on anything else): other stored text is shown
        // as it is.
        let value = parse(json)
        guard JSONSerialization.isValidJSONObject(value) else { return json }
        return (try? render(value)) ?? json
    }
}
