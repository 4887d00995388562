import Foundation
import StepHostCore
import Synchronization

/// A step written in Swift against the step protocol, whose run is a closure: engine tests script what a
/// step does (write, checkpoint, retry, fail, fault, race another writer) without a plugin.
struct ScriptedStep: Step {
    let identity: StepIdentity
    private let body: @Sendable (OperationRecord, StepContext) async -> StepResult
    /// Every call, as (pass, operation as the step received it).
    let calls = Calls()

    final class Calls: Sendable {
        private let list = Mutex<[(pass: Int, operation: OperationRecord)]>([])
        var all: [(pass: Int, operation: OperationRecord)] { list.withLock { $0 } }
        var count: Int { all.count }
        func append(_ pass: Int, _ operation: OperationRecord) { list.withLock { $0.append((pass, operation)) } }
    }

    /// A plugin step named `name` of plugin `plugin` (default: the step's name) at `weight`.
    init(
        _ name: String,
        weight: Int,
        plugin: String? = nil,
        _ body: @escaping @Sendable (OperationRecord, StepContext) async -> StepResult
    ) {
        identity = StepIdentity(
            name: name,
            weight: weight,
            provenance: .plugin(
                PluginProvenance(
                    name: plugin ?? name,
                    version: "1.0.0",
                    file: "/plugins/\(plugin ?? name).so",
                    fileHash: String(repeating: "ab", count: 32),
                    stepIndex: 0
                )
            )
        )
        self.body = body
    }

    func run(_ operation: OperationRecord, context: StepContext) async -> StepResult {
        calls.append(context.pass, operation)
        return await body(operation, context)
    }

    /// A step that finishes and writes nothing.
    static func done(_ name: String, weight: Int) -> ScriptedStep {
        ScriptedStep(name, weight: weight) { _, _ in StepResult(outcome: .done) }
    }

    /// A step that sets `field` to `json` and finishes.
    static func setting(_ name: String, weight: Int, _ field: String, _ json: String) -> ScriptedStep {
        ScriptedStep(name, weight: weight) { _, _ in
            var result = StepResult(outcome: .done)
            result.changes.fields.append(FieldChange(key: field, json: json))
            return result
        }
    }
}
