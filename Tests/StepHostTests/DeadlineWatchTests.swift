import Foundation
import StepHostLoader
import Synchronization
import Testing

/// The one thread that acts on step deadlines.
@Suite struct DeadlineWatchTests {
    /// The context switches of this process's thread named `name`, read from /proc.
    static func contextSwitches(ofThread name: String) throws -> Int? {
        let tasks = try FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")
        for task in tasks {
            let comm = (try? String(contentsOfFile: "/proc/self/task/\(task)/comm", encoding: .utf8)) ?? ""
            guard comm.trimmingCharacters(in: .whitespacesAndNewlines) == name else { continue }
            let status = try String(contentsOfFile: "/proc/self/task/\(task)/status", encoding: .utf8)
            return status.split(separator: "\n").filter { $0.contains("ctxt_switches") }
                .compactMap { Int($0.split(separator: "\t").last ?? "") }.reduce(0, +)
        }
        return nil
    }

    /// Deadlines fire once due, never after a cancel, and an earlier one added while the watch sleeps toward a
    /// later one still fires on time (it wakes the watch).
    @Test func deadlinesFireUnlessCancelledAndAnEarlierOneWakesTheWatch() async throws {
        let watch = DeadlineWatch(threadName: "test-watch-1")
        let fired = Mutex<[String]>([])
        _ = watch.schedule(at: .now + .seconds(3600)) { fired.withLock { $0.append("late") } }
        try await Task.sleep(for: .milliseconds(100))  // the watch now sleeps toward the hour
        let cancelled = watch.schedule(at: .now + .milliseconds(100)) { fired.withLock { $0.append("cancelled") } }
        _ = watch.schedule(at: .now + .milliseconds(150)) { fired.withLock { $0.append("due") } }
        #expect(watch.cancel(cancelled))
        #expect(try eventually(within: 5) { fired.withLock { $0 } == ["due"] })
        try await Task.sleep(for: .milliseconds(200))
        #expect(fired.withLock { $0 } == ["due"])
    }

    /// A step that begins and ends well within its deadline costs the watch thread no wake-up: registering and
    /// removing 2,000 deadlines later than the one it sleeps toward switches it at most a few times (it was two
    /// switches per step before; this reads the thread's counters from /proc).
    @Test func deadlinesLaterThanTheNextWakeUpWakeNobody() throws {
        let watch = DeadlineWatch(threadName: "test-watch-2")
        // One step at a time, as with one worker: each deadline is the only one while its step runs. The watch
        // thread must have seen the first one before it is removed (else it waits for any deadline, and the first
        // of the loop's wakes it, which is right): wait until it sleeps toward it, however loaded the machine.
        let first = watch.schedule(at: .now + .seconds(1800)) {}
        #expect(try eventually(within: 30) { watch.nextWakeUp != nil })
        watch.cancel(first)
        Thread.sleep(forTimeInterval: 0.1)
        let before = try #require(try Self.contextSwitches(ofThread: "test-watch-2"))
        for _ in 0..<2000 {
            let registration = watch.schedule(at: .now + .seconds(1800)) {}
            watch.cancel(registration)
        }
        Thread.sleep(forTimeInterval: 0.1)
        let after = try #require(try Self.contextSwitches(ofThread: "test-watch-2"))
        #expect(after - before <= 5, "the watch thread switched \(after - before) times")
    }
}
