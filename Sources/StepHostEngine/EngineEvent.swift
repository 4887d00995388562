public import Foundation
public import StepHostCore
public import StepHostStorage

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
    /// The shortest wait before the next pass, whatever a step asked for: a step that asks to retry after
    /// 0 ms must not spin the host.
    public var minimumRetryDelay: Duration = .milliseconds(100)
    /// How long a claim on an operation holds without being renewed. A pass renews it every third of it while
    /// it runs.
    public var lease: Duration = .seconds(300)
    /// How many times in a row a host may die while running the same step of an operation before the next
    /// host fails the operation instead of running that step again.
    public var maximumHostDeaths: Int = 3
    /// How many operations run at once.
    public var workers: Int = 4
    /// The plugins this host runs without (disabled by name or file): recorded on every operation it runs a pass
    /// of (``OperationRecord/disabledPlugins``).
    public var disabledPlugins: [String] = []

    public init() {}
}

/// What a call of ``Engine/runDue(only:)`` or ``Engine/runUntilIdle(only:)`` did: every operation that was
/// unfinished when the call began, as stored when it ended (whichever host wrote it last), oldest first, and
/// how many passes this host ran.
public struct RunReport: Sendable {
    public let operations: [OperationSummary]
    /// Operations unfinished when the call began whose stored data cannot be read; claiming failed them.
    public let unreadable: [UnreadableOperation]
    public let passes: Int

    public init(operations: [OperationSummary], unreadable: [UnreadableOperation] = [], passes: Int) {
        self.operations = operations
        self.unreadable = unreadable
        self.passes = passes
    }

    /// The operation with `id`, if it was unfinished when the call began.
    public func operation(id: String) -> OperationSummary? {
        operations.first { $0.id == id }
    }
}

/// An operation's id and state, as a report lists it (``Engine/runUntilIdle(only:)``): the whole row of every
/// operation of a long queue would cost memory in proportion to the queue.
public struct OperationSummary: Sendable, Hashable {
    public let id: String
    public let state: OperationState

    public init(id: String, state: OperationState) {
        self.id = id
        self.state = state
    }
}

/// The host took no new work: ``Engine/runUntilIdle(only:)`` and ``Engine/runDue(only:)`` throw it once the
/// passes that were running have ended.
public struct EngineStopped: Error, Sendable, CustomStringConvertible {
    /// Why, and what an operator does about it.
    public var reason: String

    public init(reason: String) { self.reason = reason }

    public var description: String { "the host stopped taking new work: \(reason)" }
}
