public import Foundation

/// Where the engine reads the time and waits for it.
///
/// Every time the engine persists (creation, due times, deadlines, claims) comes from here, so tests can
/// run an operation through hours of retries without waiting: see the test clock in the tests' support.
public protocol HostClock: Sendable {
    /// The current time.
    var now: Date { get }

    /// Suspends until `date` (returns at once if it has passed).
    func sleep(until date: Date) async throws
}

/// The system's wall clock.
public struct SystemClock: HostClock {
    public init() {}

    public var now: Date { Date() }

    public func sleep(until date: Date) async throws {
        let seconds = date.timeIntervalSinceNow
        guard seconds > 0 else { return }
        try await Task.sleep(for: .seconds(fractional: seconds))
    }
}
