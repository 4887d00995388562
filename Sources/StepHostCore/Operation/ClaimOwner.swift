import Foundation
import Glibc

/// The identity of one host process, as written into the claims it holds.
///
/// `host:pid:start:pidns` where `start` is the process's start time in clock ticks since boot, so a reused
/// pid is not mistaken for the original process, and `pidns` the inode of its PID namespace: a pid means
/// something only inside its namespace, and hosts in containers on one machine may share a host name.
public struct ClaimOwner: Sendable, Hashable, CustomStringConvertible {
    public let description: String

    public init(_ description: String) { self.description = description }

    /// This process.
    public static let current = ClaimOwner(
        "\(ProcessInfo.processInfo.hostName):\(getpid()):\(processStartTime(getpid()) ?? "0"):\(pidNamespace ?? "0")"
    )

    /// Whether the owner is a process on this host, in this PID namespace, that no longer runs. Owners on
    /// other hosts or in other PID namespaces are presumed alive until their lease runs out. (An owner written
    /// by an earlier release has no namespace part and is judged by pid and start time alone.)
    public var isDeadLocalProcess: Bool {
        let parts = description.split(separator: ":").map(String.init)
        guard parts.count >= 3, parts[0] == ProcessInfo.processInfo.hostName, let pid = Int32(parts[1]) else {
            return false
        }
        if parts.count >= 4, parts[3] != Self.pidNamespace { return false }
        guard let start = Self.processStartTime(pid) else { return true }
        return start != parts[2]
    }

    /// The inode of this process's PID namespace (from `/proc/self/ns/pid`, "pid:[INODE]").
    static let pidNamespace: String? = {
        var buffer = [CChar](repeating: 0, count: 64)
        let count = readlink("/proc/self/ns/pid", &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        let link = String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return link.split(separator: "[").last.map { String($0.dropLast()) }
    }()

    /// Field 22 of /proc/PID/stat, or `nil` when the process does not exist.
    private static func processStartTime(_ pid: Int32) -> String? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        // Fields after the command name (which may hold spaces): state is field 3, start time field 22.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 19 ? String(fields[19]) : nil
    }
}
