import Synchronization

/// Whether one step run has passed its deadline, shared by the thread that runs it, the deadline watch and the
/// step's callbacks (`is_cancelled`, `checkpoint`).
///
/// A checkpoint and the deadline exclude each other: a checkpoint in progress when the deadline passes ends
/// before the run is cancelled, and none starts after, so nothing the step writes lands once the host has
/// failed the operation.
public final class StepCancellation: Sendable {
    private let cancelled = Atomic<Bool>(false)
    private let gate = Mutex(())

    public init() {}

    public var isCancelled: Bool { cancelled.load(ordering: .acquiring) }

    /// Cancels the run, once any checkpoint in progress has ended. Returns `false` if it was already cancelled.
    @discardableResult
    public func cancel() -> Bool {
        gate.withLock { _ in
            !cancelled.exchange(true, ordering: .acquiringAndReleasing)
        }
    }

    /// Runs `body` unless the run is cancelled; `nil` if it is.
    func unlessCancelled<T>(_ body: () -> T) -> T? {
        gate.withLock { _ in
            cancelled.load(ordering: .acquiring) ? nil : body()
        }
    }
}
