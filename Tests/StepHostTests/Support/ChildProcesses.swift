import Foundation
import Glibc

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
