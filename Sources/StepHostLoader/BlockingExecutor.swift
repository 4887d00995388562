import Dispatch
import Foundation
import StepHostSystem
import Synchronization

/// Runs blocking work (plugin step calls) on threads of its own, outside Swift's cooperative pool, so
/// a step that blocks for minutes cannot starve the host's tasks.
///
/// Threads are started on demand up to `maximumThreads` and then kept; jobs beyond that wait in order.
public final class BlockingExecutor: Sendable {
    private struct State {
        var jobs: [@Sendable () -> Void] = []
        var threads = 0
        var idle = 0
    }

    private let state = Mutex(State())
    /// Counts queued jobs; an idle thread waits on it.
    private let queued = DispatchSemaphore(value: 0)
    private let maximumThreads: Int
    private let name: String

    public init(name: String, maximumThreads: Int) {
        self.name = name
        self.maximumThreads = max(1, maximumThreads)
    }

    /// Runs `body` on one of the executor's threads and returns its result.
    func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            enqueue { continuation.resume(returning: body()) }
        }
    }

    private func enqueue(_ job: @escaping @Sendable () -> Void) {
        // The number of the thread to start, if one is needed; taken under the lock so names are unique.
        let newThread: Int? = state.withLock { state in
            state.jobs.append(job)
            guard state.idle == 0, state.threads < maximumThreads else { return nil }
            state.threads += 1
            return state.threads
        }
        if let newThread {
            let threadName = "\(name)-\(newThread)"
            Thread { [self] in work(named: threadName) }.start()
        }
        queued.signal()
    }

    private func work(named threadName: String) {
        // Named from inside: a new thread otherwise inherits its creator's name (a pool thread's).
        // Not through Thread.name, which races with Thread.start() and is then silently not applied.
        stephost_name_current_thread(threadName)
        while true {
            state.withLock { $0.idle += 1 }
            queued.wait()
            let job = state.withLock { state in
                state.idle -= 1
                return state.jobs.removeFirst()
            }
            job()
        }
    }
}

/// Waits on the calling (non-cooperative) thread for async work. Only for plugin threads: never call
/// it from a task.
func blockingWait<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) -> Result<T, any Error> {
    let done = DispatchSemaphore(value: 0)
    let result = Mutex<Result<T, any Error>?>(nil)
    Task {
        let outcome: Result<T, any Error>
        do { outcome = .success(try await body()) } catch { outcome = .failure(error) }
        result.withLock { $0 = outcome }
        done.signal()
    }
    done.wait()
    return result.withLock { $0! }
}
