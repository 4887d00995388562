public import StepHostLoader

/// The ordered list of steps an operation runs through: every loaded plugin step and the built-in
/// `create_runtime` at weight 100.
///
/// The order is deterministic and never follows the directory: by weight, then by plugin name, then
/// by the order the plugin lists its steps. `create_runtime` has a weight no plugin step may use, so it
/// never ties.
public struct Pipeline: Sendable {
    /// The name of the built-in step that sends the provisioning request.
    public static let createRuntimeName = "create_runtime"
    /// The weight of `create_runtime`.
    public static let createRuntimeWeight = 100

    /// The steps in the order they run.
    public let steps: [PipelineStep]

    /// Orders the steps of `plugins` around `create_runtime`.
    public init(plugins: [LoadedPlugin]) {
        let pluginSteps = plugins.flatMap(\.steps).map(PipelineStep.plugin)
        steps = (pluginSteps + [.createRuntime]).sorted(by: PipelineStep.runsBefore)
    }
}

/// One step of the pipeline.
public enum PipelineStep: Sendable {
    /// A step a plugin declared.
    case plugin(PluginStep)
    /// The built-in step that turns the operation into a provisioning request.
    case createRuntime

    /// The step's name.
    public var name: String {
        switch self {
        case .plugin(let step): step.name
        case .createRuntime: Pipeline.createRuntimeName
        }
    }

    /// The step's weight.
    public var weight: Int {
        switch self {
        case .plugin(let step): step.weight
        case .createRuntime: Pipeline.createRuntimeWeight
        }
    }

    /// The plugin's step, or `nil` for the built-in step.
    public var pluginStep: PluginStep? {
        if case .plugin(let step) = self { return step }
        return nil
    }

    /// The ordering rule: weight, then plugin name, then the plugin's own step order.
    static func runsBefore(_ lhs: PipelineStep, _ rhs: PipelineStep) -> Bool {
        if lhs.weight != rhs.weight { return lhs.weight < rhs.weight }
        switch (lhs, rhs) {
        case (.plugin(let left), .plugin(let right)):
            if left.plugin != right.plugin { return left.plugin.utf8.lexicographicallyPrecedes(right.plugin.utf8) }
            return left.index < right.index
        default:
            return false  // create_runtime's weight is unique
        }
    }
}
