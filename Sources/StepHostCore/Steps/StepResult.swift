/// How one step run ended. The engine turns it into the operation's next state.
public enum StepOutcome: Sendable, Hashable {
    /// The step finished; the operation goes on to the next step.
    case done
    /// Repeat the whole operation from the first step after this delay (`nil`: the step set none, the
    /// engine's default applies).
    case retry(after: Duration?)
    /// The operation fails with this message.
    case fail(String)
    /// The step broke its contract (for a plugin: the ABI); the operation fails and none of the step's
    /// writes are kept.
    case fault(String)

    /// The outcome's name, as the step history stores it.
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        case done, retry, fail, fault
    }

    public var kind: Kind {
        switch self {
        case .done: .done
        case .retry: .retry
        case .fail: .fail
        case .fault: .fault
        }
    }
}

/// A custom field a step set (JSON value text) or removed (`json == nil`).
public struct FieldChange: Sendable, Hashable {
    public var key: String
    public var json: String?

    public init(key: String, json: String?) {
        self.key = key
        self.json = json
    }
}

/// What a step changes in the persisted operation: custom fields and, for `create_runtime`, the runtime.
public struct OperationChanges: Sendable, Hashable {
    /// Field changes in the order the step made them; a later change of a key replaces an earlier one.
    public var fields: [FieldChange]
    /// The runtime facts to store, when the step learned any.
    public var runtime: RuntimeRecord?

    public init(fields: [FieldChange] = [], runtime: RuntimeRecord? = nil) {
        self.fields = fields
        self.runtime = runtime
    }

    public var isEmpty: Bool { fields.isEmpty && runtime == nil }
}

/// The levels of a step's log lines (the ABI's `STEPHOST_LOG_*`).
public enum StepLogLevel: Int32, Sendable, Hashable {
    case debug = 0
    case info = 1
    case warning = 2
    case error = 3
}

/// One log line a step wrote.
public struct StepLogLine: Sendable, Hashable {
    public var level: StepLogLevel
    public var message: String

    public init(_ level: StepLogLevel, _ message: String) {
        self.level = level
        self.message = message
    }
}

/// Everything one step run reported.
public struct StepResult: Sendable {
    /// How the run ended.
    public var outcome: StepOutcome
    /// What the step changed in the operation.
    public var changes = OperationChanges()
    /// Component overrides, in the order the step added them.
    public var componentOverrides: [ComponentOverride] = []
    /// Global overrides, in the order the step added them.
    public var globalOverrides: [Override] = []
    /// Labels, in the order the step added them.
    public var labels: [(key: String, value: String)] = []
    /// Log lines the step wrote.
    public var logs: [StepLogLine] = []
    /// How many times the step asked to checkpoint.
    public var checkpoints = 0

    public init(outcome: StepOutcome) {
        self.outcome = outcome
    }

    /// The values of the secret overrides this run declared.
    public var declaredSecrets: [String] {
        (componentOverrides.map(\.override) + globalOverrides).filter(\.secret).map(\.value)
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
