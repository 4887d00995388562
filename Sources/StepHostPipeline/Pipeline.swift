public import StepHostCore

/// The ordered list of steps an operation runs through: every plugin step and the built-in steps
/// (`create_runtime` at weight 100).
///
/// The order is deterministic and never follows the directory: by weight, then by plugin name, then by
/// the order the plugin lists its steps. Built-in steps have weights no plugin step may use (the loader
/// refuses them), so they never tie.
public struct Pipeline: Sendable {
    /// The steps in the order they run.
    public let steps: [any Step]

    /// Orders `steps`.
    public init(_ steps: [any Step]) {
        self.steps = steps.sorted { Self.runsBefore($0.identity, $1.identity) }
    }

    /// `identities` in the order their steps would run, for showing a pipeline without building its steps.
    public static func order(_ identities: [StepIdentity]) -> [StepIdentity] {
        identities.sorted(by: runsBefore)
    }

    /// The ordering rule: weight, then plugin name (bytes), then the plugin's own step order.
    public static func runsBefore(_ lhs: StepIdentity, _ rhs: StepIdentity) -> Bool {
        if lhs.weight != rhs.weight { return lhs.weight < rhs.weight }
        switch (lhs.provenance, rhs.provenance) {
        case (.plugin(let left), .plugin(let right)):
            if left.name != right.name { return left.name.utf8.lexicographicallyPrecedes(right.name.utf8) }
            return left.stepIndex < right.stepIndex
        case (.builtIn, .plugin):
            return true
        case (.plugin, .builtIn):
            return false
        case (.builtIn, .builtIn):
            return lhs.name.utf8.lexicographicallyPrecedes(rhs.name.utf8)
        }
    }
}
