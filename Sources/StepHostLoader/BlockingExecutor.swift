import Dispatch
import Foundation
import StepHostSystem
import Synchronization

/// Runs blocking work (plugin step calls) on threads of its own, outside Swift's cooperative pool, so
/// a step that blocks for minutes cannot starve the host's tasks.
///
/// Threads are started on demand up to `maximumThreads` and then kept; jobs beyond that wait in order.
///
/// It is also a `TaskExecutor`: the engine runs each pass with it as the task's preferred executor, so the pass
/// itself runs on one of these threads and calls its plugin steps directly, with no hop to another thread and
/// back per step (``isCurrent``). While a pass waits (for the database), its thread runs other passes' work.
public final class BlockingExecutor: TaskExecutor, Sendable {
    private enum Work: @unchecked Sendable {
        case closure(@Sendable () -> Void)
        case job(UnownedJob)
        /// A slot whose work was taken: it must not keep what a closure captured alive until compaction.
        case taken
    }

    private struct State {
        var jobs: [Work] = []
        var head = 0
        var threads = 0
        var idle = 0
        /// Work handed to one thread to run next (``runNext(_:)``, ``handingOff(_:)``), by thread number.
        var next: [Int: Work] = [:]
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

    /// Whether the calling thread is one of this executor's.
    public var isCurrent: Bool {
        stephost_thread_tag() == UnsafeRawPointer(Unmanaged.passUnretained(self).toOpaque())
    }

    /// Runs `body` on one of the executor's threads and returns its result.
    func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            enqueue(.closure { continuation.resume(returning: body()) })
        }
    }

    /// Runs `body` on one of the executor's threads, without waiting for it.
    func enqueue(_ body: @escaping @Sendable () -> Void) {
        enqueue(.closure(body))
    }

    /// Runs `body` on this very thread as soon as the work it runs now returns (a pass that is about to wait for
    /// it), or, called from elsewhere, on any of the executor's threads. A plugin call a pass waits for thus costs
    /// no wake-up of another thread and no move of the pass between threads.
    func runNext(_ body: @escaping @Sendable () -> Void) {
        let slot = Int(stephost_thread_slot())
        guard isCurrent, slot > 0 else { return enqueue(.closure(body)) }
        let queued = state.withLock { state in
            guard state.next[slot] == nil else { return false }
            state.next[slot] = .closure(body)
            return true
        }
        if !queued { enqueue(.closure(body)) }
    }

    /// Runs `body`; a job enqueued on this executor from this thread meanwhile (a task that `body` resumes) runs
    /// next on this thread, right after the work it runs now.
    func handingOff<T>(_ body: () -> T) -> T {
        guard isCurrent else { return body() }
        stephost_set_thread_handoff(1)
        defer { stephost_set_thread_handoff(0) }
        return body()
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        enqueue(.job(UnownedJob(job)))
    }

    private func enqueue(_ work: Work) {
        if stephost_thread_handoff() != 0, isCurrent {
            let slot = Int(stephost_thread_slot())
            let handed = state.withLock { state in
                guard slot > 0, state.next[slot] == nil else { return false }
                state.next[slot] = work
                return true
            }
            if handed { return }
        }
        // The number of the thread to start, if one is needed; taken under the lock so names are unique.
        let newThread: Int? = state.withLock { state in
            state.jobs.append(work)
            // A thread for every job not yet taken beyond the idle threads: two jobs queued while one thread is idle
            // (not yet awake) would otherwise share it, and a job that blocks until the other runs would wait forever.
            guard state.jobs.count - state.head > state.idle, state.threads < maximumThreads else { return nil }
            state.threads += 1
            return state.threads
        }
        if let newThread {
            let threadName = "\(name)-\(newThread)"
            Thread { [self] in serve(named: threadName, slot: newThread) }.start()
        }
        queued.signal()
    }

    private func serve(named threadName: String, slot: Int) {
        // Named from inside: a new thread otherwise inherits its creator's name (a pool thread's).
        // Not through Thread.name, which races with Thread.start() and is then silently not applied.
        stephost_name_current_thread(threadName)
        stephost_set_thread_tag(UnsafeRawPointer(Unmanaged.passUnretained(self).toOpaque()))
        stephost_set_thread_slot(slot)
        let executor = asUnownedTaskExecutor()
        while true {
            // Work handed to this thread first: it was meant to run here, next.
            if let work = state.withLock({ $0.next.removeValue(forKey: slot) }) {
                run(work, on: executor)
                continue
            }
            state.withLock { $0.idle += 1 }
            queued.wait()
            let work = state.withLock { state in
                state.idle -= 1
                let work = state.jobs[state.head]
                state.jobs[state.head] = .taken
                state.head += 1
                // Compacted now and then, not shifted on every job.
                if state.head >= 64 && state.head * 2 >= state.jobs.count {
                    state.jobs.removeFirst(state.head)
                    state.head = 0
                }
                return work
            }
            run(work, on: executor)
        }
    }

    private func run(_ work: Work, on executor: UnownedTaskExecutor) {
        switch work {
        case .closure(let body): body()
        case .job(let job): job.runSynchronously(on: executor)
        case .taken: break
        }
    }
}

/// Waits on the calling (non-cooperative) thread for async work. Only for plugin threads: never call
/// it from a task's cooperative thread. The work runs on the global executor, never on the caller's preferred
/// executor, whose threads may all be waiting like this one.
func blockingWait<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) -> Result<T, any Error> {
    let done = DispatchSemaphore(value: 0)
    let result = Mutex<Result<T, any Error>?>(nil)
    Task(executorPreference: globalConcurrentExecutor) {
        let outcome: Result<T, any Error>
        do { outcome = .success(try await body()) } catch { outcome = .failure(error) }
        result.withLock { $0 = outcome }
        done.signal()
    }
    done.wait()
    return result.withLock { $0! }
}
