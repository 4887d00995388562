import Foundation
import StepHostCore

extension PluginCheckReport {
    /// The report for people. Every line has its control characters escaped: names, messages and logs come from
    /// the plugin.
    public func text() -> String {
        var lines = ["\(file): \(verdict.rawValue.uppercased())"]
        if let sha256 { lines.append("  sha-256   \(sha256)") }
        if let plugin {
            let declared = [version, abi.map { "ABI \($0)" }].compactMap { $0 }.joined(separator: ", ")
            lines.append("  plugin    \(plugin)" + (declared.isEmpty ? "" : " (\(declared))"))
        }
        if let exports {
            lines.append(
                "  exports   "
                    + (exports.isEmpty
                        ? "nothing"
                        : exports.prefix(8).joined(separator: ", ")
                            + (exports.count > 8 ? " and \(exports.count - 8) more" : ""))
            )
        }
        if !pipeline.isEmpty {
            lines.append(
                "  pipeline" + (pipelineDirectory.map { " (with the plugins of \($0))" } ?? " (this plugin alone)")
                    + ":"
            )
            var rows = [["", "#", "WEIGHT", "STEP", "PLUGIN"]]
            for entry in pipeline {
                rows.append([
                    entry.checked ? "→" : "", "\(entry.position)", "\(entry.weight)", entry.step,
                    entry.plugin ?? "(built-in)",
                ])
            }
            lines += TextTable.lines(rows).map { "    " + $0 }
        }
        for step in steps {
            lines.append("  step \(step.name) (weight \(step.weight)):")
            for run in step.runs {
                var summary = "    run \(run.run): \(run.outcome)"
                if let after = run.retryAfterMilliseconds { summary += " after \(after) ms" }
                if let message = run.message { summary += ": \(message)" }
                summary += " (\(run.milliseconds) ms"
                if run.checkpoints > 0 {
                    summary += ", \(run.checkpoints) checkpoint\(run.checkpoints == 1 ? "" : "s")"
                }
                summary += ")"
                lines.append(summary)
                if run.discarded && !run.fields.isEmpty {
                    lines.append("      (the run faulted: its writes below would not be kept)")
                }
                for field in run.fields.prefix(20) {
                    lines.append(
                        "      field     \(Self.cut(field.key)) = \(field.json.map { Self.cut($0) } ?? "(removed)")"
                    )
                }
                if run.fields.count > 20 { lines.append("      field     … \(run.fields.count - 20) more") }
                for override in run.overrides {
                    lines.append(
                        "      override  \(override.component.map { "\($0): " } ?? "global: ")\(override.key) = "
                            + "\(override.value)\(override.secret ? " (secret)" : "")"
                    )
                }
                for label in run.labels { lines.append("      label     \(label)") }
                for log in run.logs.prefix(20) { lines.append("      log       \(log)") }
                if run.logs.count > 20 { lines.append("      log       … \(run.logs.count - 20) more lines") }
            }
            switch step.idempotent {
            case true?: lines.append("    idempotent: the second run did the same as the first")
            case false?: lines.append("    NOT idempotent: " + step.differences.joined(separator: "; "))
            case nil: lines.append("    idempotency not checked: a run faulted")
            }
        }
        for finding in findings {
            lines.append("  \(finding.level.rawValue) [\(finding.code)] \(finding.message)")
            lines.append("    fix: \(finding.fix)")
        }
        return lines.map(\.escapingControlCharacters).joined(separator: "\n")
    }

    /// The report as a JSON object (see ``json(_:)``).
    public var jsonObject: [String: Any] {
        var object: [String: Any] = [
            "file": file,
            "verdict": verdict.rawValue,
            "findings": findings.map {
                ["level": $0.level.rawValue, "code": $0.code, "message": $0.message, "fix": $0.fix]
            },
            "pipeline": pipeline.map { entry -> [String: Any] in
                [
                    "position": entry.position, "weight": entry.weight, "step": entry.step,
                    "plugin": entry.plugin ?? NSNull(), "checked": entry.checked,
                ]
            },
            "steps": steps.map { step -> [String: Any] in
                [
                    "name": step.name, "weight": step.weight,
                    "idempotent": step.idempotent.map { $0 as Any } ?? NSNull(),
                    "differences": step.differences,
                    "runs": step.runs.map { run -> [String: Any] in
                        [
                            "run": run.run, "outcome": run.outcome, "message": run.message ?? NSNull(),
                            "retry_after_ms": run.retryAfterMilliseconds ?? NSNull(), "duration_ms": run.milliseconds,
                            "checkpoints": run.checkpoints, "discarded": run.discarded,
                            "fields_omitted": max(0, run.fields.count - 200),
                            "fields": run.fields.prefix(200).map {
                                ["key": Self.cut($0.key, 4096), "json": $0.json.map { Self.cut($0, 4096) } ?? NSNull()]
                                    as [String: Any]
                            },
                            "overrides": run.overrides.map {
                                [
                                    "component": $0.component ?? NSNull(), "key": $0.key, "value": $0.value,
                                    "secret": $0.secret,
                                ] as [String: Any]
                            },
                            "labels": run.labels, "logs": run.logs,
                        ]
                    },
                ]
            },
        ]
        object["sha256"] = sha256 ?? NSNull()
        object["plugin"] = plugin ?? NSNull()
        object["version"] = version ?? NSNull()
        object["abi"] = abi ?? NSNull()
        object["exports"] = exports ?? NSNull()
        object["plugins_dir"] = pipelineDirectory ?? NSNull()
        return object
    }

    /// The JSON document of a check that could not start: `{"verdict": "broken", "error": message, "plugins": []}`.
    public static func errorJSON(_ message: String) -> String {
        let object: [String: Any] = ["verdict": "broken", "error": message, "plugins": [Any]()]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    /// Reports as one JSON document: `{"verdict": worst, "plugins": [...]}`.
    public static func json(_ reports: [PluginCheckReport]) -> String {
        let worst = reports.map(\.verdict).max { $0.rank < $1.rank } ?? .conformant
        let object: [String: Any] = ["verdict": worst.rawValue, "plugins": reports.map(\.jsonObject)]
        let data =
            (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted])) ?? Data()
        // JSONSerialization leaves these as they are: escaped here (they occur in strings only), so no text of a
        // plugin can drive or reorder the terminal the JSON is shown on.
        var text = ""
        for scalar in String(decoding: data, as: UTF8.self).unicodeScalars {
            // C1 controls, DEL, line separators and the bidirectional overrides and isolates: escaped as text
            // mode escapes them.
            let value = scalar.value
            if (0x7F...0x9F).contains(value) || value == 0x2028 || value == 0x2029 || (0x202A...0x202E).contains(value)
                || (0x2066...0x2069).contains(value)
            {
                text += String(format: "\\u%04x", scalar.value)
            } else {
                text.unicodeScalars.append(scalar)
            }
        }
        return text
    }
}

extension PluginCheckReport {
    /// `text` cut to `limit` characters, ending in "…" when cut.
    static func cut(_ text: String, _ limit: Int = 200) -> String {
        text.count <= limit ? text : String(text.prefix(limit)) + "…"
    }
}

extension PluginCheckReport.Verdict {
    /// Worse verdicts rank higher.
    public var rank: Int {
        switch self {
        case .conformant: 0
        case .warnings: 1
        case .broken: 2
        }
    }
}
