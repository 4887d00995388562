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

    public func enqueue(_ job: consuming ExecutorJob) {
        enqueue(.job(UnownedJob(job)))
    }

    private func enqueue(_ work: Work) {
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
            Thread { [self] in serve(named: threadName) }.start()
        }
        queued.signal()
    }

    private func serve(named threadName: String) {
        // Named from inside: a new thread otherwise inherits its creator's name (a pool thread's).
        // Not through Thread.name, which races with Thread.start() and is then silently not applied.
        stephost_name_current_thread(threadName)
        stephost_set_thread_tag(UnsafeRawPointer(Unmanaged.passUnretained(self).toOpaque()))
        let executor = asUnownedTaskExecutor()
        while true {
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
            switch work {
            case .closure(let body): body()
            case .job(let job): job.runSynchronously(on: executor)
            case .taken: break
            }
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
