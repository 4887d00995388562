import Foundation
import Synchronization

/// In-process step runs that passed their deadline and have not returned: the host stopped waiting for them,
/// but their threads cannot be stopped. Past a limit the host stops taking new work (``refusal``), since every
/// stuck run holds a thread and whatever the plugin holds; an operator then restarts the host.
public final class StuckSteps: Sendable {
    private struct State {
        var next = 0
        var running: [Int: String] = [:]
        var total = 0
    }

    private let state = Mutex(State())
    /// How many may be stuck before the host stops taking new work.
    public let limit: Int

    public init(limit: Int) {
        self.limit = max(0, limit)
    }

    /// Records a run that passed its deadline; returns the token ``ended(_:)`` takes once it returns.
    func began(_ description: String) -> Int {
        state.withLock { state in
            state.next += 1
            state.running[state.next] = description
            state.total += 1
            return state.next
        }
    }

    /// A stuck run returned at last; its thread is free again.
    func ended(_ token: Int) {
        _ = state.withLock { $0.running.removeValue(forKey: token) }
    }

    /// How many runs are stuck now.
    public var count: Int { state.withLock { $0.running.count } }

    /// Why the host takes no new work, or `nil` while it may.
    public var refusal: String? {
        state.withLock { state in
            guard state.running.count > limit else { return nil }
            let which = state.running.keys.sorted().prefix(3).compactMap { state.running[$0] }.joined(separator: "; ")
            return "\(state.running.count) in-process steps are stuck past their deadlines, more than the "
                + "\(limit) allowed (\(which)); their threads cannot be stopped: restart the host, and consider "
                + "`isolation: process` for their plugins"
        }
    }
}
