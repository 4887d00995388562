public import Foundation
public import StepHostCore

/// What the engine reports while it works, for progress output.
public enum EngineEvent: Sendable {
    /// A pass of the operation started.
    case passStarted(operationID: String, pass: Int, steps: Int)
    /// A step finished, with its outcome and its message (secrets removed).
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
    /// How long a claim on an operation holds without being renewed. A pass renews it between steps once
    /// half of it has passed.
    public var lease: Duration = .seconds(300)
    /// How many operations run at once.
    public var workers: Int = 4

    public init() {}
}

/// What a call of ``Engine/runDue(only:)`` or ``Engine/runUntilIdle(only:)`` did: every operation it ran
/// a pass of, as it was after its last pass, in the order they first ran.
public struct RunReport: Sendable {
    public private(set) var operations: [OperationRecord] = []
    /// How many passes ran.
    public private(set) var passes = 0
    private var positions: [String: Int] = [:]

    public init() {}

    /// Records one pass that left `operation` as it is.
    mutating func record(pass operation: OperationRecord) {
        passes += 1
        keep(operation)
    }

    mutating func merge(_ other: RunReport) {
        for operation in other.operations { keep(operation) }
        passes += other.passes
    }

    private mutating func keep(_ operation: OperationRecord) {
        if let position = positions[operation.id] {
            operations[position] = operation
        } else {
            positions[operation.id] = operations.count
            operations.append(operation)
        }
    }

    /// The operation with `id`, if a pass of it ran.
    public func operation(id: String) -> OperationRecord? {
        positions[id].map { operations[$0] }
    }
}
