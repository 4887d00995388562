import Dispatch
import Foundation
import StepHostLoader
import Testing

/// The executor passes and plugin steps run on.
@Suite("Step executor")
struct ExecutorTests {
    /// Two jobs queued back to back while one thread is idle get a thread each: the first blocks until the
    /// second has run (a step waiting in a checkpoint for a save that another pass's task must hand over), which
    /// deadlocks if they share the idle thread. Repeated, since the idle thread may wake between the two.
    @Test func jobsQueuedTogetherNeverShareOneIdleThread() async throws {
        for _ in 0..<20 {
            let executor = BlockingExecutor(name: "test-exec", maximumThreads: 4)
            // One thread started, now idle.
            await Task(executorPreference: executor) {}.value
            try await Task.sleep(for: .milliseconds(5))
            let released = DispatchSemaphore(value: 0)
            let done = DispatchSemaphore(value: 0)
            Task(executorPreference: executor) {
                // Blocks its thread until the second job has run, as a step blocks in a checkpoint.
                if released.wait(timeout: .now() + 5) == .success { done.signal() }
            }
            Task(executorPreference: executor) { released.signal() }
            let finished = await Task.detached { done.wait(timeout: .now() + 5) == .success }.value
            #expect(finished, "the second job never ran: both were left to one idle thread")
            if !finished { return }
        }
    }
}
