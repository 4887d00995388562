import Foundation
import Logging
import StepHostCore
import StepHostSystem
import Synchronization

/// A runner or scanner child: started in a process group of its own with only the descriptors it is given,
/// its output captured and logged (bounded, attributed to its plugin), stopped and reaped exactly once.
final class ChildProcess: Sendable {
    let pid: Int32
    /// The host's ends: it writes requests to `input` and reads frames from `output`.
    let input: Int32
    let output: Int32
    /// A pidfd of the child (-1 if the kernel has none): readable once the child ended. Reads wait on it as well
    /// as on the pipe, so a child that died while something it left behind (a forked daemon) holds its pipe open
    /// ends a read instead of blocking it forever.
    let pidfd: Int32
    private let state = Mutex(State())

    private struct State {
        var ended: Ending?
        /// The signals the host sent the child: an ending by one of them is a stop, not a crash.
        var sent: Set<Int32> = []
    }

    /// How a child ended.
    struct Ending: Sendable, CustomStringConvertible {
        var exitCode: Int32?
        var signal: Int32?
        /// The host sent the signal that ended it (a deadline, garbage on its pipe, a hang while loading).
        var byHost = false

        var description: String {
            if let signal, signal != 0 {
                let named = "signal \(signal) (\(Self.name(of: signal)))"
                return byHost ? "was stopped with \(named)" : "crashed with \(named)"
            }
            return "exited with status \(exitCode ?? -1)"
        }

        static func name(of signal: Int32) -> String {
            let names: [Int32: String] = [
                SIGSEGV: "SIGSEGV", SIGABRT: "SIGABRT", SIGBUS: "SIGBUS", SIGILL: "SIGILL", SIGFPE: "SIGFPE",
                SIGKILL: "SIGKILL", SIGTERM: "SIGTERM", SIGTRAP: "SIGTRAP", SIGXCPU: "SIGXCPU", SIGPIPE: "SIGPIPE",
                SIGSYS: "SIGSYS", SIGINT: "SIGINT", SIGHUP: "SIGHUP",
            ]
            let text = strsignal(signal).map { String(cString: $0) } ?? "unknown signal"
            return names[signal].map { "\($0), \(text)" } ?? text
        }
    }

    struct SpawnError: Error, CustomStringConvertible {
        var description: String
        /// The `errno` of the call that failed.
        var code: Int32 = 0

        /// The host was short of descriptors, memory or processes at that moment: worth trying again later.
        var isResourceShortage: Bool { [EMFILE, ENFILE, EAGAIN, ENOMEM].contains(code) }
    }

    /// Starts `executable` with `arguments`; `extra` descriptors become the child's 5, 6, …
    init(
        executable: String,
        arguments: [String],
        extra: [Int32],
        label: String,
        logger: Logger
    ) throws(SpawnError) {
        func pipe() throws(SpawnError) -> (read: Int32, write: Int32) {
            var ends: [Int32] = [-1, -1]
            guard stephost_pipe(&ends) == 0 else {
                let code = errno
                throw SpawnError(description: "no pipe could be made (\(String(cString: strerror(code))))", code: code)
            }
            return (ends[0], ends[1])
        }
        let requests = try pipe()
        let replies: (read: Int32, write: Int32)
        let printed: (read: Int32, write: Int32)
        do {
            replies = try pipe()
        } catch {
            close(requests.read)
            close(requests.write)
            throw error
        }
        do {
            printed = try pipe()
        } catch {
            for end in [requests.read, requests.write, replies.read, replies.write] { close(end) }
            throw error
        }
        let descriptors: [Int32] = [-1, printed.write, printed.write, requests.read, replies.write] + extra
        var argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        var envp: [UnsafeMutablePointer<CChar>?] = Self.environment.map { strdup($0) } + [nil]
        defer { for pointer in argv + envp { free(pointer) } }
        let pid = descriptors.withUnsafeBufferPointer { fds in
            stephost_spawn(executable, &argv, &envp, fds.baseAddress, Int32(fds.count))
        }
        let spawnErrno = errno
        for end in [requests.read, replies.write, printed.write] { close(end) }
        guard pid > 0 else {
            for end in [requests.write, replies.read, printed.read] { close(end) }
            throw SpawnError(
                description: "\(executable) could not be started (\(String(cString: strerror(spawnErrno))))",
                code: spawnErrno
            )
        }
        self.pid = pid
        input = requests.write
        output = replies.read
        pidfd = stephost_pidfd_open(pid)
        Self.capture(printed.read, label: label, pid: pid, pidfd: pidfd, logger: logger)
    }

    /// The host's environment, with Swift's crash backtracer off: a plugin that crashes in a child would otherwise
    /// spend the best part of a second printing a backtrace of the child (its output is captured anyway), and a
    /// short deadline would report a timeout instead of the signal.
    private static let environment: [String] = {
        var environment = ProcessInfo.processInfo.environment
        environment["SWIFT_BACKTRACE"] = "enable=no"
        return environment.map { "\($0.key)=\($0.value)" }.sorted()
    }()

    deinit {
        close(input)
        close(output)
        // The output thread may still be reading; it holds its own duplicate.
        if pidfd >= 0 { close(pidfd) }
        // A child nobody stopped (an idle runner of a pool that went away with its host) is stopped and reaped
        // here: else it would stay a zombie of the host for as long as the host lives.
        stop()
    }

    var ended: Ending? { state.withLock { $0.ended } }

    /// Whether the child still runs. One that ended by itself (killed from outside, its CPU limit) is reaped now,
    /// without blocking, and its ending kept.
    var isRunning: Bool {
        state.withLock { state in
            guard state.ended == nil else { return false }
            var exitCode: Int32 = 0
            var signal: Int32 = 0
            guard stephost_wait(pid, 0, &exitCode, &signal) > 0 else { return true }
            _ = kill(-pid, SIGKILL)  // anything the plugin forked into the group
            state.ended = Ending(
                exitCode: signal == 0 ? exitCode : nil,
                signal: signal,
                byHost: state.sent.contains(signal)
            )
            return false
        }
    }

    /// Signals the child's whole process group (what a plugin forked too), unless the child was already reaped.
    func signal(_ number: Int32) {
        state.withLock { state in
            guard state.ended == nil else { return }
            state.sent.insert(number)
            _ = stephost_kill_descendants(pid, number)
            // The child itself too, not only its group: a plugin may have moved it to another group.
            _ = kill(pid, number)
            _ = kill(-pid, number)
        }
    }

    /// Stops the child (SIGKILL to its group) if it still runs, reaps it, and says how it ended. Idempotent.
    @discardableResult
    func stop() -> Ending {
        state.withLock { state in
            if let ended = state.ended { return ended }
            var exitCode: Int32 = 0
            var signal: Int32 = 0
            // Did it end by itself? Then its own ending is the one to report, not the kill below.
            var result = stephost_wait(pid, 0, &exitCode, &signal)
            if result == 0 {
                state.sent.insert(SIGKILL)
                // Its descendants first, while they are still found below it (they left its group if they called
                // setsid); then the child and its group.
                _ = stephost_kill_descendants(pid, SIGKILL)
                _ = kill(pid, SIGKILL)
                _ = kill(-pid, SIGKILL)
                result = Self.reap(pid, pidfd: pidfd, &exitCode, &signal)
                if result == 0 {
                    // Killed, but held as a zombie by a tracer: a thread of its own reaps it once the tracer lets
                    // go, so it does not stay the host's zombie.
                    signal = SIGKILL
                    let zombie = pid
                    Thread {
                        var code: Int32 = 0
                        var number: Int32 = 0
                        _ = stephost_wait(zombie, 1, &code, &number)
                    }.start()
                }
            }
            _ = kill(-pid, SIGKILL)  // anything the plugin forked into the group
            let ending = Ending(
                exitCode: result > 0 && signal == 0 ? exitCode : nil,
                signal: signal,
                byHost: state.sent.contains(signal)
            )
            state.ended = ending
            return ending
        }
    }

    /// Waits up to `timeout` for the child to end by itself (after its pipe closed), then stops it.
    func finish(within timeout: Duration) -> Ending {
        let until = ContinuousClock.now + timeout
        while ContinuousClock.now < until {
            let done: Ending? = state.withLock { state in
                if let ended = state.ended { return ended }
                var exitCode: Int32 = 0
                var signal: Int32 = 0
                guard stephost_wait(pid, 0, &exitCode, &signal) > 0 else { return nil }
                _ = kill(-pid, SIGKILL)
                let ending = Ending(
                    exitCode: signal == 0 ? exitCode : nil,
                    signal: signal,
                    byHost: state.sent.contains(signal)
                )
                state.ended = ending
                return ending
            }
            if let done { return done }
            usleep(2000)
        }
        return stop()
    }

    /// Reaps a child that was sent SIGKILL, waiting at most 5 s: a killed child that something traces cannot be
    /// reaped until its tracer lets go, and no thread of the host (a step's, the deadline watch's) may wait for that
    /// for ever. Returns waitpid's result (0: not reaped; it is left, a zombie, to the kernel).
    private static func reap(_ pid: Int32, pidfd: Int32, _ exitCode: inout Int32, _ signal: inout Int32) -> Int32 {
        let until = ContinuousClock.now + .seconds(5)
        while true {
            let result = stephost_wait(pid, 0, &exitCode, &signal)
            if result != 0 || ContinuousClock.now >= until { return result }
            if pidfd >= 0 {
                _ = stephost_wait_data(pidfd, -1, 50)
            } else {
                usleep(10_000)
            }
            usleep(1000)
        }
    }

    /// Whether the child wrote something nobody asked for (a plugin that forged frames between calls): such a
    /// runner is out of step with the host and must not serve another call.
    var hasUnreadOutput: Bool {
        stephost_wait_data(output, -1, 0) == 1
    }

    /// Waits until the child's frames pipe has something to read (or the child ended: the read then reports
    /// it), or `timeout` passes; `false` on timeout.
    func readable(within timeout: Duration) -> Bool {
        let milliseconds = max(0, Int32(clamping: Int64(timeout.timeInterval * 1000)))
        return stephost_wait_data(output, pidfd, milliseconds) != 0
    }

    /// Logs what the child prints, line by line, attributed to `label`: each line cut to 512 bytes and escaped,
    /// at most 100 lines per 10 seconds (the rest counted), so megabytes of output cost the host nothing but the
    /// reading.
    private static func capture(_ descriptor: Int32, label: String, pid: Int32, pidfd: Int32, logger: Logger) {
        // Its own pidfd: the child's may be closed while this thread still reads.
        let ended = pidfd >= 0 ? fcntl(pidfd, F_DUPFD_CLOEXEC, 0) : -1
        let thread = Thread {
            stephost_name_current_thread("stephost-output")
            var buffer = [UInt8](repeating: 0, count: 65536)
            var line: [UInt8] = []
            var lineLength = 0  // all of the line's bytes, also those past what is kept
            var windowStart = ContinuousClock.now
            var logged = 0
            var dropped = 0
            func emit(_ bytes: [UInt8], length: Int) {
                if ContinuousClock.now - windowStart > .seconds(10) {
                    if dropped > 0 {
                        logger.warning(
                            "plugin output: \(dropped) more lines were not logged",
                            metadata: ["plugin": "\(label)", "pid": "\(pid)"]
                        )
                    }
                    windowStart = ContinuousClock.now
                    logged = 0
                    dropped = 0
                }
                guard logged < 100 else {
                    dropped += 1
                    return
                }
                logged += 1
                let text = String(decoding: bytes.prefix(512), as: UTF8.self).escapingControlCharacters
                logger.notice(
                    "plugin output: \(text)\(length > 512 ? "… (\(length - 512) more bytes)" : "")",
                    metadata: ["plugin": "\(label)", "pid": "\(pid)"]
                )
            }
            while true {
                // Once the child ended and its output is drained, stop: a process it left behind may hold the pipe
                // open for ever, and this thread must not wait for it.
                if ended >= 0, stephost_wait_data(descriptor, ended, -1) == 2 { break }
                let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { break }
                for byte in buffer[0..<count] {
                    if byte == 10 {
                        emit(line, length: lineLength)
                        line.removeAll(keepingCapacity: true)
                        lineLength = 0
                    } else {
                        lineLength += 1
                        if line.count < 512 { line.append(byte) }
                    }
                }
            }
            if lineLength > 0 { emit(line, length: lineLength) }
            if dropped > 0 {
                logger.warning(
                    "plugin output: \(dropped) more lines were not logged",
                    metadata: ["plugin": "\(label)", "pid": "\(pid)"]
                )
            }
            close(descriptor)
            if ended >= 0 { close(ended) }
        }
        thread.start()
    }
}
