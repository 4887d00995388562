public import Foundation
public import StepHostStorage

/// What the engine reports while it works, for progress output.
public enum EngineEvent: Sendable {
    /// A pass of the operation started.
    case passStarted(operationID: String, pass: Int, steps: Int)
    /// A step finished, with its outcome (`done`, `retry`, `fail`, `fault`) and its message (secrets removed).
    case stepFinished(operationID: String, pass: Int, position: Int, steps: Int, run: StepRun)
    /// The operation is parked until `until`, when its next pass is due.
    case parked(operationID: String, until: Date, reason: String)
    /// The operation reached a final state.
    case finished(OperationRecord)
    /// Nothing is due; the scheduler waits until `until`, when the next operation is due.
    case waiting(until: Date)
}

/// How the engine runs operations.
public struct EngineOptions: Sendable {
    /// How long an operation may take before it fails (default 24 hours).
    public var deadline: Duration = .seconds(24 * 60 * 60)
    /// The delay for a retry whose step set none.
    public var defaultRetryDelay: Duration = .seconds(10)
    /// How long a claim on an operation holds without being renewed.
    public var lease: Duration = .seconds(300)
    /// How many operations run at once, each with its own thread for plugin calls.
    public var workers: Int = 4

    public init() {}
}
