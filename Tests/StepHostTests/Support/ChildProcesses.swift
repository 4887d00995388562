import Foundation
import Glibc
import Synchronization

/// The processes and descriptors of this test process, as /proc shows them: for tests that runner children end,
/// are reaped, and leave no descriptor behind.
enum ChildProcesses {
    struct Entry: CustomStringConvertible {
        var pid: pid_t
        var parent: pid_t
        /// R, S, D, Z (a zombie: ended, not reaped), ...
        var state: Character
        var command: String
        /// The arguments; empty for a zombie.
        var arguments: [String]

        var description: String { "\(pid) \(state) \(command) \(arguments.joined(separator: " "))" }
    }

    /// The process `pid`, or nil when there is none (it ended and was reaped).
    static func entry(_ pid: pid_t) -> Entry? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")")
        else { return nil }
        let rest = stat[stat.index(after: close)...].split(separator: " ")
        guard rest.count >= 2, let state = rest[0].first, let parent = pid_t(rest[1]) else { return nil }
        let raw = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
        let arguments = raw.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        return Entry(
            pid: pid,
            parent: parent,
            state: state,
            command: String(stat[stat.index(after: open)..<close]),
            arguments: arguments
        )
    }

    /// The state of process `pid` (`Z` for a zombie), or nil when there is none.
    static func state(of pid: pid_t) -> Character? { entry(pid)?.state }

    /// The children of this process, zombies included.
    static func children() -> [Entry] {
        let me = getpid()
        let pids = (try? FileManager.default.contentsOfDirectory(atPath: "/proc"))?.compactMap { pid_t($0) } ?? []
        return pids.compactMap(entry).filter { $0.parent == me }
    }

    /// The children of this process that are runners of the plugin file at `path`.
    static func runners(of path: String) -> [pid_t] {
        children().filter { $0.arguments.contains("__runner") && $0.arguments.contains(path) }.map(\.pid)
    }

    /// How many descriptors this process has open.
    static func openDescriptors() -> Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd"))?.count ?? 1) - 1
    }

    /// What this process's open descriptors point to (`pipe:[…]`, `/memfd:…`, paths).
    static func descriptorTargets() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return names.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\($0)") }
    }
}

/// Polls `condition` every 20 ms until it holds or `seconds` pass; whether it held.
func eventually(within seconds: Double, _ condition: () async throws -> Bool) async throws -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try await condition() { return true }
        try await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

/// `body` ran longer than the time it was given.
struct TimedOut: Error, CustomStringConvertible {
    var description: String
}

/// The result of `body`, or ``TimedOut`` after `seconds`: a host that never returns (a deadline that does not
/// fire) fails the test instead of hanging the run. `body` is left running then.
func within<T: Sendable>(
    _ seconds: Double,
    _ what: String,
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let race = Race<T>()
    return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        race.start(continuation)
        Task {
            do { race.finish(.success(try await body())) } catch { race.finish(.failure(error)) }
        }
        Task {
            try? await Task.sleep(for: .seconds(seconds))
            race.finish(.failure(TimedOut(description: "\(what) did not end within \(seconds) s")))
        }
    }
}

/// Resumes a continuation with the first result only.
private final class Race<T: Sendable>: Sendable {
    private let continuation = Mutex<CheckedContinuation<T, any Error>?>(nil)

    func start(_ continuation: CheckedContinuation<T, any Error>) {
        self.continuation.withLock { $0 = continuation }
    }

    func finish(_ result: Result<T, any Error>) {
        let waiting = continuation.withLock { waiting in
            defer { waiting = nil }
            return waiting
        }
        waiting?.resume(with: result)
    }
}
