import Foundation
import Logging
import StepHostABI
import StepHostSystem
import Synchronization

/// The child side of isolation: the `stephost` binary in its hidden runner or scanner mode.
///
/// The host starts it with the plugin's sealed copy as descriptor 5 (a scanner: 5, 6, … one per plugin), the
/// host's requests on descriptor 3, its own frames to the host on descriptor 4, standard output and error on a
/// pipe the host reads, standard input on /dev/null, and nothing else open. Before any plugin code runs it lowers
/// its resource limits and asks to die with the host.
public enum RunnerChild {
    static let requests: Int32 = 3
    static let replies: Int32 = 4
    static let firstPlugin: Int32 = 5

    /// Limits and the parent check every child applies before it loads a plugin.
    private static func prepare(parent: Int32, limits: ResourceLimits) -> Bool {
        guard stephost_die_with_parent(parent) == 0 else { return false }
        // What a plugin forks stays below this process, even a double-forked daemon, so the host can find and
        // stop it with the child.
        _ = stephost_become_subreaper()
        _ = stephost_limit_self(limits.addressSpace ?? 0, limits.cpuSeconds ?? 0, limits.openFiles ?? 0)
        signal(SIGPIPE, SIG_IGN)
        return true
    }

    /// Scanner mode: loads each plugin in turn and reports it; exits 0 after the last one.
    public static func scan(files: [(name: String, hash: String)], parent: Int32, limits: ResourceLimits) -> Int32 {
        guard prepare(parent: parent, limits: limits) else { return 70 }
        let logger = Logger(label: "stephost-scanner") { _ in SwiftLogNoOpLogHandler() }
        for (index, file) in files.enumerated() {
            var writer = RunnerProtocol.Writer(.scanning)
            writer.u32(UInt32(index))
            guard RunnerProtocol.write(writer.frame, to: replies) else { return 71 }
            let frame: [UInt8]
            do {
                let plugin = try PluginLoader.load(
                    sealedCopy: firstPlugin + Int32(index),
                    file: file.name,
                    fileHash: file.hash,
                    logger: logger
                )
                frame = hello(plugin, index: index)
            } catch {
                frame = loadFailed(error, index: index)
            }
            guard RunnerProtocol.write(frame, to: replies) else { return 71 }
        }
        return 0
    }

    /// Runner mode: loads one plugin, reports it, then serves step runs until the host closes the pipe.
    public static func run(file: String, hash: String, parent: Int32, limits: ResourceLimits) -> Int32 {
        guard prepare(parent: parent, limits: limits) else { return 70 }
        let logger = Logger(label: "stephost-runner") { _ in SwiftLogNoOpLogHandler() }
        let plugin: LoadedPlugin
        do {
            plugin = try PluginLoader.load(sealedCopy: firstPlugin, file: file, fileHash: hash, logger: logger)
        } catch {
            RunnerProtocol.write(loadFailed(error, index: 0), to: replies)
            return 0
        }
        guard RunnerProtocol.write(hello(plugin, index: 0), to: replies) else { return 71 }
        while true {
            let payload: [UInt8]
            switch RunnerProtocol.read(from: requests, limit: RunnerProtocol.maximumHostFrame) {
            case .success(let read): payload = read
            case .failure(.closed): return 0
            case .failure: return 72
            }
            var reader = RunnerProtocol.Reader(payload)
            guard reader.message == .run, let index = try? Int(reader.u32()), let document = try? reader.blob(),
                index < plugin.steps.count, let entry = plugin.steps[index].entry
            else { return 73 }
            let code = RunnerCall.run(entry, document: document.bytes)
            var writer = RunnerProtocol.Writer(.result)
            writer.i32(code)
            guard RunnerChannel.shared.send(writer.frame) else { return 71 }
        }
    }

    private static func hello(_ plugin: LoadedPlugin, index: Int) -> [UInt8] {
        var writer = RunnerProtocol.Writer(.hello)
        writer.u32(RunnerProtocol.version)
        writer.u32(UInt32(index))
        writer.text(plugin.name)
        writer.text(plugin.version)
        writer.u32(plugin.abiVersion.packed)
        writer.u32(UInt32(plugin.steps.count))
        for step in plugin.steps {
            writer.text(step.name)
            writer.i32(Int32(truncatingIfNeeded: step.weight))
        }
        return writer.frame
    }

    private static func loadFailed(_ broken: BrokenPlugin, index: Int) -> [UInt8] {
        var writer = RunnerProtocol.Writer(.loadFailed)
        writer.u32(RunnerProtocol.version)
        writer.u32(UInt32(index))
        writer.text(broken.name ?? "")
        writer.text("\(broken.error.code)")
        writer.text(broken.error.message)
        writer.text(broken.error.fix)
        return writer.frame
    }
}

/// The child's pipe to the host: frames from any thread go out whole, one at a time.
final class RunnerChannel: Sendable {
    static let shared = RunnerChannel()
    private let lock = Mutex(())

    func send(_ frame: [UInt8]) -> Bool {
        lock.withLock { _ in RunnerProtocol.write(frame, to: RunnerChild.replies) }
    }

    /// Sends a callback and waits for the host's status. Only the thread running the call asks.
    func ask(_ frame: [UInt8]) -> Int32 {
        guard send(frame) else { exit(74) }
        switch RunnerProtocol.read(from: RunnerChild.requests, limit: 64) {
        case .success(let payload):
            var reader = RunnerProtocol.Reader(payload)
            guard reader.message == .reply, let status = try? reader.i32() else { exit(73) }
            return status
        case .failure:
            exit(74)
        }
    }
}

/// One step call in the runner: the plugin gets a services table whose callbacks forward to the host.
///
/// The child checks the call's context and thread the way the host does in process (a token valid only during
/// its call, on its thread), so a plugin sees the same answers in both modes; the host then checks every value
/// that arrives again, since nothing a child sends can be trusted.
enum RunnerCall {
    private struct Current {
        var token: UInt = 0
        var thread: pthread_t?
    }
    private static let current = Mutex(Current())
    private static let tokens = Atomic<UInt>(UInt.random(in: (1 << 32)..<(1 << 48)))

    static func run(_ entry: PluginStep.Entry, document: [UInt8]) -> Int32 {
        let token = tokens.add(1, ordering: .relaxed).newValue
        current.withLock { $0 = Current(token: token, thread: pthread_self()) }
        defer { current.withLock { $0 = Current() } }
        var services = Self.services
        return withUnsafePointer(to: &services) { services in
            document.withUnsafeBufferPointer { json in
                json.withMemoryRebound(to: CChar.self) { json in
                    var call = stephost_step_call(
                        struct_size: UInt32(MemoryLayout<stephost_step_call>.size),
                        operation_json: json.baseAddress,
                        operation_json_len: json.count,
                        ctx: UnsafeMutableRawPointer(bitPattern: token),
                        services: services
                    )
                    return entry.run(entry.context, &call)
                }
            }
        }
    }

    /// Whether `context` is the running call's, used on its thread. A misuse during a call is reported to the
    /// host, which makes it a fault of that call; outside any call there is nothing to report it on.
    private static func valid(_ context: UnsafeMutableRawPointer?, _ callback: String) -> Bool {
        let (ok, during) = current.withLock { state -> (Bool, Bool) in
            guard let thread = state.thread else { return (false, false) }
            return (UInt(bitPattern: context) == state.token && pthread_equal(thread, pthread_self()) != 0, true)
        }
        if !ok && during {
            var writer = RunnerProtocol.Writer(.misuse)
            writer.text(
                "\(callback) was given a call context that is stale or belongs to another call, or was called from "
                    + "a thread other than the call's"
            )
            _ = RunnerChannel.shared.send(writer.frame)
        }
        return ok
    }

    /// A plugin's text as it travels: its bytes when the host would read them, else only its length.
    private static func blob(_ pointer: UnsafePointer<CChar>?, _ length: Int, limit: Int) -> RunnerProtocol.Blob {
        let declared = UInt64(UInt(bitPattern: length))
        guard let pointer else { return .init(kind: .null, declared: declared, bytes: []) }
        guard declared <= UInt64(limit) else { return .init(kind: .notSent, declared: declared, bytes: []) }
        let bytes = Array(UnsafeRawBufferPointer(start: pointer, count: Int(declared)))
        return .init(kind: .bytes, declared: declared, bytes: bytes)
    }

    /// A message: up to 64 KiB of it, nothing of an implausible length (the host reads no more).
    private static func message(_ pointer: UnsafePointer<CChar>?, _ length: Int) -> RunnerProtocol.Blob {
        let declared = UInt64(UInt(bitPattern: length))
        guard let pointer else { return .init(kind: .null, declared: declared, bytes: []) }
        guard declared <= UInt64(Names.implausibleMessageLength) else {
            return .init(kind: .notSent, declared: declared, bytes: [])
        }
        let count = Int(min(declared, UInt64(Names.maximumMessageLength)))
        return .init(
            kind: .bytes,
            declared: declared,
            bytes: Array(UnsafeRawBufferPointer(start: pointer, count: count))
        )
    }

    private static func ask(_ message: RunnerProtocol.Message, _ fill: (inout RunnerProtocol.Writer) -> Void) -> Int32 {
        var writer = RunnerProtocol.Writer(message)
        fill(&writer)
        return RunnerChannel.shared.ask(writer.frame)
    }

    private static func tell(_ message: RunnerProtocol.Message, _ fill: (inout RunnerProtocol.Writer) -> Void) {
        var writer = RunnerProtocol.Writer(message)
        fill(&writer)
        _ = RunnerChannel.shared.send(writer.frame)
    }

    static let keyLimit = StepCallRecorder.maximumFieldKeyLength
    static let textLimit = StepCallRecorder.maximumTextLength

    static let services = stephost_call_services(
        struct_size: UInt32(MemoryLayout<stephost_call_services>.size),
        set_field: { context, key, keyLength, json, jsonLength in
            guard valid(context, "set_field") else { return STEPHOST_STATUS_ERROR }
            return ask(.setField) {
                $0.blob(blob(key, keyLength, limit: keyLimit))
                $0.blob(blob(json, jsonLength, limit: textLimit))
            }
        },
        remove_field: { context, key, keyLength in
            guard valid(context, "remove_field") else { return STEPHOST_STATUS_ERROR }
            return ask(.removeField) { $0.blob(blob(key, keyLength, limit: keyLimit)) }
        },
        add_component_override: { context, component, componentLength, key, keyLength, value, valueLength, secret in
            guard valid(context, "add_component_override") else { return STEPHOST_STATUS_ERROR }
            return ask(.componentOverride) {
                $0.blob(blob(component, componentLength, limit: textLimit))
                $0.blob(blob(key, keyLength, limit: textLimit))
                $0.blob(blob(value, valueLength, limit: textLimit))
                $0.i32(secret)
            }
        },
        add_global_override: { context, key, keyLength, value, valueLength, secret in
            guard valid(context, "add_global_override") else { return STEPHOST_STATUS_ERROR }
            return ask(.globalOverride) {
                $0.blob(blob(key, keyLength, limit: textLimit))
                $0.blob(blob(value, valueLength, limit: textLimit))
                $0.i32(secret)
            }
        },
        add_label: { context, key, keyLength, value, valueLength in
            guard valid(context, "add_label") else { return STEPHOST_STATUS_ERROR }
            return ask(.label) {
                $0.blob(blob(key, keyLength, limit: textLimit))
                $0.blob(blob(value, valueLength, limit: textLimit))
            }
        },
        log: { context, level, text, length in
            guard valid(context, "log") else { return }
            tell(.log) {
                $0.i32(level)
                $0.blob(message(text, length))
            }
        },
        checkpoint: { context in
            guard valid(context, "checkpoint") else { return STEPHOST_STATUS_ERROR }
            return ask(.checkpoint) { _ in }
        },
        set_retry_after: { context, milliseconds in
            guard valid(context, "set_retry_after") else { return }
            tell(.retryAfter) { $0.u64(milliseconds) }
        },
        set_error: { context, text, length in
            guard valid(context, "set_error") else { return }
            tell(.setError) { $0.blob(message(text, length)) }
        },
        is_cancelled: { context in
            guard valid(context, "is_cancelled") else { return 0 }
            return ask(.isCancelled) { _ in }
        }
    )
}
