import Foundation
public import Logging
import Metrics
import StepHostCore
import Synchronization

/// How the host starts its children: the `stephost` binary in a hidden mode.
public struct ChildEnvironment: Sendable {
    /// The `stephost` executable.
    public var executable: String
    public var logger: Logger
    /// How long a child may take to load its plugin and answer.
    public var initTimeout: Duration
    /// After a deadline, how long a runner has between SIGTERM and SIGKILL.
    public var killGrace: Duration

    public init(
        executable: String,
        logger: Logger,
        initTimeout: Duration = .seconds(10),
        killGrace: Duration = .seconds(2)
    ) {
        self.executable = executable
        self.logger = logger
        self.initTimeout = initTimeout
        self.killGrace = killGrace
    }

    /// The `stephost` executable: this process's own image when it is `stephost` (through `/proc/self/exe`, so
    /// children run the same build even after an upgrade replaced the file), else a `stephost` beside it (the
    /// benchmark, the test runner), else this process's own.
    public static let defaultExecutable: String = {
        let own = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? "stephost"
        let url = URL(fileURLWithPath: own)
        if ["stephost", "stephost (deleted)"].contains(url.lastPathComponent) { return "/proc/self/exe" }
        let sibling = url.deletingLastPathComponent().appendingPathComponent("stephost").path
        return FileManager.default.isExecutableFile(atPath: sibling) ? sibling : own
    }()
}

/// A plugin as the host knows it before any runner loads it: what the runner must confirm in its hello.
struct RunnerPlugin: Sendable {
    var name: String
    var file: String
    var fileHash: String
    /// The sealed copy the runner loads (its descriptor 5).
    var sealedCopy: Int32
    var steps: [(name: String, weight: Int)]
}

/// Why a runner could not be used; the step that wanted it faults with this.
struct RunnerFailure: Error, CustomStringConvertible {
    var description: String
    /// The host was short of descriptors, memory or processes when it started the runner: a matter of the host's
    /// resources at that moment, not of the plugin, so the step is retried instead of failing its operation. (A
    /// runner executable that is missing, or a plugin that does not load in it, still fails the step.)
    var transient = false
}

/// One runner child of one plugin, serving one step call at a time.
final class PluginRunner: Sendable {
    let child: ChildProcess
    let plugin: RunnerPlugin

    /// Starts a runner and waits for its hello, which must name the plugin and steps the host expects.
    init(_ plugin: RunnerPlugin, limits: ResourceLimits, environment: ChildEnvironment) throws(RunnerFailure) {
        ignoreBrokenPipes
        self.plugin = plugin
        var arguments = [
            "__runner", "--protocol", "\(RunnerProtocol.version)", "--file", plugin.file, "--hash", plugin.fileHash,
            "--parent", "\(getpid())",
        ]
        if let value = limits.addressSpace { arguments += ["--address-space", "\(value)"] }
        if let value = limits.cpuSeconds { arguments += ["--cpu-seconds", "\(value)"] }
        if let value = limits.openFiles { arguments += ["--open-files", "\(value)"] }
        do {
            child = try ChildProcess(
                executable: environment.executable,
                arguments: arguments,
                extra: [plugin.sealedCopy],
                label: plugin.name,
                logger: environment.logger
            )
        } catch {
            throw RunnerFailure(
                description: "its runner could not be started: \(error)",
                transient: error.isResourceShortage
            )
        }
        let started = ContinuousClock.now
        guard child.readable(within: environment.initTimeout) else {
            let ending = child.stop()
            throw RunnerFailure(
                description: "its runner did not load it within \(environment.initTimeout.humanText); it \(ending)"
            )
        }
        let payload: [UInt8]
        switch RunnerProtocol.read(
            from: child.output,
            limit: RunnerProtocol.maximumChildFrame,
            writer: child.pidfd,
            until: started + environment.initTimeout
        ) {
        case .success(let read): payload = read
        case .failure(.timedOut):
            let ending = child.stop()
            throw RunnerFailure(
                description: "its runner did not load it within \(environment.initTimeout.humanText); it \(ending)"
            )
        case .failure:
            let ending = child.finish(within: .seconds(1))
            throw RunnerFailure(description: "its runner \(ending) while it loaded the plugin")
        }
        do {
            try Self.checkHello(payload, plugin)
        } catch {
            child.stop()
            throw error
        }
    }

    private static func checkHello(_ payload: [UInt8], _ plugin: RunnerPlugin) throws(RunnerFailure) {
        var reader = RunnerProtocol.Reader(payload)
        do {
            switch reader.message {
            case .hello:
                guard try reader.u32() == RunnerProtocol.version else {
                    throw RunnerFailure(description: "its runner speaks another protocol version")
                }
                _ = try reader.u32()
                let name = try reader.blob().string
                _ = try reader.blob()
                _ = try reader.u32()
                let count = Int(try reader.u32())
                guard count <= PluginNegotiation.maximumSteps else {
                    throw RunnerFailure(description: "its runner reported \(count) steps")
                }
                var steps: [(String, Int)] = []
                for _ in 0..<count { steps.append((try reader.blob().string, Int(try reader.i32()))) }
                try reader.end()
                guard name == plugin.name, steps.map(\.0) == plugin.steps.map(\.name),
                    steps.map(\.1) == plugin.steps.map(\.weight)
                else {
                    throw RunnerFailure(
                        description: "its runner loaded a plugin that declares other names or steps than when the "
                            + "host started ('\(name.escapingControlCharacters)'); restart the host"
                    )
                }
            case .loadFailed:
                _ = try reader.u32()
                _ = try reader.u32()
                _ = try reader.blob()
                let code = try reader.blob().string
                let message = try reader.blob().string
                throw RunnerFailure(
                    description: "its runner could not load it: [\(code.escapingControlCharacters)] "
                        + message.escapingControlCharacters
                )
            default:
                throw RunnerFailure(description: "its runner sent an unexpected first message")
            }
        } catch let error as RunnerProtocol.ProtocolError {
            throw RunnerFailure(description: "its runner sent a malformed hello: \(error)")
        } catch let error as RunnerFailure {
            throw error
        } catch {
            throw RunnerFailure(description: "\(error)")
        }
    }

    enum CallEnd {
        case finished(Int32)
        case broken(String)
    }

    /// Runs step `index` for `document`, forwarding every callback to `recorder`. Blocks until the runner
    /// answers, crashes, or is stopped.
    func call(step index: Int, document: [UInt8], recorder: StepCallRecorder) -> CallEnd {
        var run = RunnerProtocol.Writer(.run)
        run.u32(UInt32(index))
        run.blob(.init(kind: .bytes, declared: UInt64(document.count), bytes: document))
        guard RunnerProtocol.write(run.frame, to: child.input) else { return .broken("") }
        while true {
            let payload: [UInt8]
            switch RunnerProtocol.read(from: child.output, limit: RunnerProtocol.maximumChildFrame, writer: child.pidfd)
            {
            case .success(let read): payload = read
            case .failure(.closed): return .broken("")
            case .failure(.oversized(let length)):
                return .broken(
                    "sent a message of \(length) bytes, more than the \(RunnerProtocol.maximumChildFrame) allowed"
                )
            case .failure(.failed(let code)):
                return .broken("could not be read from (\(String(cString: strerror(code))))")
            case .failure(.timedOut):
                return .broken("did not finish a message")
            }
            do {
                if let code = try handle(payload, recorder) { return .finished(code) }
            } catch {
                return .broken("sent a malformed message (\(error))")
            }
        }
    }

    private func reply(_ status: Int32) {
        var writer = RunnerProtocol.Writer(.reply)
        writer.i32(status)
        RunnerProtocol.write(writer.frame, to: child.input)
    }

    /// Handles one frame of a call; returns the outcome code once the call ends.
    private func handle(_ payload: [UInt8], _ recorder: StepCallRecorder) throws(RunnerProtocol.ProtocolError) -> Int32?
    {
        var reader = RunnerProtocol.Reader(payload)
        let keyLimit = StepCallRecorder.maximumFieldKeyLength
        let textLimit = StepCallRecorder.maximumTextLength
        switch reader.message {
        case .setField:
            let key = try reader.blob()
            let json = try reader.blob()
            try reader.end()
            try key.check(readLimit: keyLimit)
            try json.check(readLimit: textLimit)
            reply(
                key.withPointer { keyPointer, keyLength in
                    json.withPointer { recorder.setField(keyPointer, keyLength, $0, $1) }
                }
            )
        case .removeField:
            let key = try reader.blob()
            try reader.end()
            try key.check(readLimit: keyLimit)
            reply(key.withPointer { recorder.removeField($0, $1) })
        case .componentOverride, .globalOverride:
            let component = reader.message == .componentOverride ? try reader.blob() : nil
            let key = try reader.blob()
            let value = try reader.blob()
            let secret = try reader.i32() != 0
            try reader.end()
            try component?.check(readLimit: textLimit)
            try key.check(readLimit: textLimit)
            try value.check(readLimit: textLimit)
            let status = key.withPointer { keyPointer, keyLength in
                value.withPointer { valuePointer, valueLength in
                    guard let component else {
                        return recorder.addOverride(
                            component: nil,
                            key: (keyPointer, keyLength),
                            value: (valuePointer, valueLength),
                            secret: secret
                        )
                    }
                    return component.withPointer {
                        recorder.addOverride(
                            component: ($0, $1),
                            key: (keyPointer, keyLength),
                            value: (valuePointer, valueLength),
                            secret: secret
                        )
                    }
                }
            }
            reply(status)
        case .label:
            let key = try reader.blob()
            let value = try reader.blob()
            try reader.end()
            try key.check(readLimit: textLimit)
            try value.check(readLimit: textLimit)
            reply(
                key.withPointer { keyPointer, keyLength in
                    value.withPointer { recorder.addLabel((keyPointer, keyLength), ($0, $1)) }
                }
            )
        case .log:
            let level = try reader.i32()
            let message = try reader.blob()
            try reader.end()
            try message.check(readLimit: Self.messageLimit(message))
            message.withPointer { recorder.log(level, $0, $1) }
        case .setError:
            let message = try reader.blob()
            try reader.end()
            try message.check(readLimit: Self.messageLimit(message))
            message.withPointer { recorder.setError($0, $1) }
        case .retryAfter:
            let milliseconds = try reader.u64()
            try reader.end()
            recorder.setRetryAfter(milliseconds)
        case .checkpoint:
            try reader.end()
            reply(recorder.checkpointNow())
        case .isCancelled:
            try reader.end()
            reply(recorder.isCancelled())
        case .misuse:
            let text = try reader.blob().string
            try reader.end()
            recorder.recordMisuse(String(text.prefix(300)).escapingControlCharacters)
        case .result:
            let code = try reader.i32()
            try reader.end()
            return code
        case .run, .reply, .hello, .loadFailed, .scanning, nil:
            throw RunnerProtocol.ProtocolError("a message of an unknown or unexpected type (\(payload.first ?? 0))")
        }
        return nil
    }

    /// How much of a message the host reads: none of an implausible length.
    private static func messageLimit(_ message: RunnerProtocol.Blob) -> Int {
        message.declared > UInt64(Names.implausibleMessageLength) ? 0 : Names.maximumMessageLength
    }
}

/// A host writing to a runner that died must get an error, not SIGPIPE.
private let ignoreBrokenPipes: Void = {
    signal(SIGPIPE, SIG_IGN)
}()

/// The runners of one plugin: started when a call needs one and none is idle, reused, replaced when one dies.
public final class RunnerPool: Sendable {
    let plugin: RunnerPlugin
    let limits: ResourceLimits
    let environment: ChildEnvironment
    private let idle = Mutex<[PluginRunner]>([])
    private let startedCount = Atomic<Int>(0)
    /// Runners started, and runners lost (died idle, crashed, hung, broke the protocol) that a later call replaces.
    private let starts: Counter
    private let restarts: Counter

    /// Whether the pool closes the plugin's sealed copy when it goes: a plugin that runs only in runners was never
    /// mapped here, so its copy is the pool's alone. (An in-process plugin's copy stays open for the life of the
    /// process: its /proc/self/fd path names the mapped plugin to the dynamic loader.)
    private let ownsSealedCopy: Bool

    init(_ plugin: RunnerPlugin, limits: ResourceLimits, environment: ChildEnvironment, ownsSealedCopy: Bool = false) {
        self.plugin = plugin
        self.limits = limits
        self.environment = environment
        self.ownsSealedCopy = ownsSealedCopy
        starts = Counter(label: "stephost_runner_starts_total", dimensions: [("plugin", plugin.name)])
        restarts = Counter(label: "stephost_runner_restarts_total", dimensions: [("plugin", plugin.name)])
    }

    /// Counts a runner that was lost and is replaced by the next call.
    func lost() { restarts.increment() }

    deinit {
        if ownsSealedCopy && plugin.sealedCopy >= 0 { close(plugin.sealedCopy) }
    }

    /// How many runners were started so far (restarts included).
    public var started: Int { startedCount.load(ordering: .relaxed) }

    func acquire() throws(RunnerFailure) -> PluginRunner {
        // An idle runner may have died since its last call (killed from outside, its CPU limit): it is reaped and
        // passed over, never handed to a call that would fault for it.
        while let runner = idle.withLock({ $0.popLast() }) {
            if runner.child.isRunning, !runner.child.hasUnreadOutput { return runner }
            // Dead, or out of step (it wrote frames after its last call ended): never handed a call.
            runner.child.stop()
            lost()
        }
        startedCount.add(1, ordering: .relaxed)
        starts.increment()
        return try PluginRunner(plugin, limits: limits, environment: environment)
    }

    func release(_ runner: PluginRunner) {
        idle.withLock { $0.append(runner) }
    }

    /// Stops every idle runner (a host that shuts down; runners also die with the host).
    public func stopAll() {
        let runners = idle.withLock { idle in
            defer { idle.removeAll() }
            return idle
        }
        for runner in runners { runner.child.stop() }
    }
}
