/// Everything one step run reported through its callbacks, copied out of the plugin.
public struct StepResult: Sendable {
    /// How the run ended.
    public enum Outcome: Sendable, Hashable {
        /// The step finished.
        case done
        /// Repeat the operation after this many milliseconds (`nil`: the step set no delay).
        case retry(afterMilliseconds: UInt64?)
        /// The operation fails with this message.
        case fail(String)
        /// The plugin broke the ABI (an unknown outcome code, an invalid field); the operation fails.
        case fault(String)
    }

    /// The outcome.
    public var outcome: Outcome
    /// Custom fields the step set (JSON text) or removed (`nil`), in the order it did so.
    public var fieldChanges: [(key: String, json: String?)] = []
    /// Component overrides, in the order the step added them.
    public var componentOverrides: [ComponentOverride] = []
    /// Global overrides, in the order the step added them.
    public var globalOverrides: [Override] = []
    /// Labels, in the order the step added them.
    public var labels: [(key: String, value: String)] = []
    /// Log lines the step wrote.
    public var logs: [(level: Int32, message: String)] = []
    /// How many times the step asked to checkpoint.
    public var checkpoints = 0

    public init(outcome: Outcome) {
        self.outcome = outcome
    }
}

/// A key and value handed to a component (or to every component), possibly secret.
public struct Override: Sendable, Hashable, CustomStringConvertible {
    public var key: String
    /// The value. Never print it directly: use ``redactedValue`` or ``description``.
    public var value: String
    /// A secret value never appears in the database, logs or output.
    public var secret: Bool

    public init(key: String, value: String, secret: Bool) {
        self.key = key
        self.value = value
        self.secret = secret
    }

    /// The value, or `<redacted>` when it is secret.
    public var redactedValue: String { secret ? "<redacted>" : value }

    public var description: String { "\(key)=\(redactedValue)" }
}

/// An override for one component.
public struct ComponentOverride: Sendable, Hashable, CustomStringConvertible {
    public var component: String
    public var override: Override

    public init(component: String, override: Override) {
        self.component = component
        self.override = override
    }

    public var description: String { "\(component): \(override)" }
}
