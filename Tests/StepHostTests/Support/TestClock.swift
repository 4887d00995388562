import Foundation
import StepHostCore
import Synchronization

/// A clock that only moves when told to, or when the engine sleeps on it: a sleep jumps straight to its
/// end. Engine tests run hours of retries and leases this way without waiting.
final class TestClock: HostClock {
    private let current: Mutex<Date>

    /// Starts at a whole second, so times survive the stores' millisecond precision unchanged.
    init(_ start: Date = Date(timeIntervalSince1970: 1_800_000_000)) {
        current = Mutex(start)
    }

    var now: Date { current.withLock { $0 } }

    func advance(by seconds: TimeInterval) {
        current.withLock { $0 = $0.addingTimeInterval(seconds) }
    }

    func sleep(until date: Date) async throws {
        try Task.checkCancellation()
        current.withLock { $0 = max($0, date) }
        await Task.yield()
    }
}
