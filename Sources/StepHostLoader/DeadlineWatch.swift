import Dispatch
import Foundation
import StepHostSystem
import Synchronization

/// One thread that acts when step runs pass their deadlines.
///
/// A step run registers its deadline before it starts and removes it when it returns: two short lock holds, no
/// timer object, no task and no allocation that lives past the run (a cancelled `Task.sleep` keeps its memory
/// until it would have ended: ten minutes, for a default deadline). Actions run on a dispatch queue, never on the
/// watch's thread, so one that waits (for a checkpoint to end, for a runner to die) delays no other deadline.
public final class DeadlineWatch: Sendable {
    public static let shared = DeadlineWatch()

    private struct Entry {
        var id: UInt64
        var due: ContinuousClock.Instant
        var action: @Sendable () -> Void
    }

    private struct State {
        var next: UInt64 = 0
        /// Sorted by due time, latest first, so the earliest is removed from the end.
        var entries: [Entry] = []
        var started = false
        /// When the watch thread wakes next by itself; `nil` while it waits for an entry. A new deadline later
        /// than this needs no wake-up: the thread finds it when it wakes (a step that starts and ends well
        /// within its deadline costs no context switch here).
        var wakeAt: ContinuousClock.Instant?
    }

    private let state = Mutex(State())
    private let wake = NSCondition()
    private let threadName: String

    /// A watch of its own, its thread named `threadName` (the host uses ``shared``).
    public init(threadName: String = "stephost-watch") {
        self.threadName = threadName
    }
    private let actions = DispatchQueue(label: "stephost-deadlines", attributes: .concurrent)

    /// Runs `action` once `due` passes, unless ``cancel(_:)`` comes first. Returns the registration.
    public func schedule(at due: ContinuousClock.Instant, _ action: @escaping @Sendable () -> Void) -> UInt64 {
        let (id, earliest, start) = state.withLock { state in
            state.next += 1
            let index = state.entries.firstIndex { $0.due < due } ?? state.entries.count
            state.entries.insert(Entry(id: state.next, due: due, action: action), at: index)
            let start = !state.started
            state.started = true
            let wake = index == state.entries.count - 1 && (state.wakeAt.map { due < $0 } ?? true)
            return (state.next, wake, start)
        }
        if start {
            Thread { [self] in watch() }.start()
        } else if earliest {
            wake.lock()
            wake.signal()
            wake.unlock()
        }
        return id
    }

    /// When the watch thread wakes next by itself (`nil` while it waits for a deadline to be added): for tests
    /// that need the thread asleep toward a known deadline before they start counting its wake-ups.
    package var nextWakeUp: ContinuousClock.Instant? { state.withLock { $0.wakeAt } }

    /// Removes a registration; `false` when its action already ran (or is running).
    @discardableResult
    public func cancel(_ id: UInt64) -> Bool {
        state.withLock { state in
            guard let index = state.entries.lastIndex(where: { $0.id == id }) else { return false }
            state.entries.remove(at: index)
            return true
        }
    }

    private func watch() {
        stephost_name_current_thread(threadName)
        wake.lock()
        while true {
            let now = ContinuousClock.now
            let (due, next) = state.withLock { state -> ([Entry], ContinuousClock.Instant?) in
                var due: [Entry] = []
                while let last = state.entries.last, last.due <= now { due.append(state.entries.removeLast()) }
                let next = state.entries.last?.due
                // At most an hour: a wait is cut there (below).
                state.wakeAt = next.map { min($0, now + .seconds(3600)) }
                return (due, next)
            }
            for entry in due { actions.async(execute: entry.action) }
            if let next {
                let wait = now.duration(to: next)
                let seconds = Double(wait.components.seconds) + Double(wait.components.attoseconds) / 1e18
                _ = wake.wait(until: Date(timeIntervalSinceNow: min(seconds, 3600)))
            } else {
                wake.wait()
            }
        }
    }
}
