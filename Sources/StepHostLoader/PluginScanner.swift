import Foundation
import Logging
import StepHostCore

/// What the scanner learned of one plugin build: its descriptor, or why it cannot be loaded.
struct ScanRecord: Codable, Sendable {
    struct Step: Codable, Sendable {
        var name: String
        var weight: Int
    }
    struct Descriptor: Codable, Sendable {
        var name: String
        var version: String
        var abi: UInt32
        var steps: [Step]
    }
    struct Failure: Codable, Sendable {
        var name: String?
        var code: String
        var message: String
        var fix: String
    }

    /// The file it was scanned as (for people reading the cache; the hash is the key).
    var file: String
    var scannedAt: Double
    var descriptor: Descriptor?
    var failure: Failure?
}

/// Loads plugins the host has not seen before in a short-lived child process first (GStreamer's
/// `gst-plugin-scanner`): a plugin whose constructor or `stephost_plugin_init` crashes, exits or hangs takes the
/// child down, not the host, and is reported broken with the way it failed.
///
/// The child is the `stephost` binary in its hidden scanner mode, with the plugins' sealed copies as its only
/// descriptors beyond its pipes, resource limits and a deadline per plugin. It loads the batch in turn and
/// reports each plugin before the next; when it dies, the plugin it was loading is blamed only if it was loading
/// it alone (a plugin that brought the child down after another one loaded is scanned again by itself first).
/// Results are cached by SHA-256 of the file (``ScanCache``): unchanged plugins are not scanned again.
struct PluginScanner {
    let environment: ChildEnvironment
    let cache: ScanCache?
    /// The most plugins one child loads.
    static let batchSize = 32

    /// The records of `files`, from the cache or a scan.
    func records(for files: [PluginLoader.CheckedFile]) -> [String: ScanRecord] {
        var records: [String: ScanRecord] = [:]
        let cached = cache?.load() ?? [:]
        var pending: [(file: PluginLoader.CheckedFile, alone: Bool)] = []
        for file in files {
            if let record = cached[file.fileHash] {
                records[file.fileHash] = record
            } else if !pending.contains(where: { $0.file.fileHash == file.fileHash }) {
                pending.append((file, false))
            }
        }
        guard !pending.isEmpty else { return records }
        var scanned: [String: ScanRecord] = [:]
        while !pending.isEmpty {
            let batch: [PluginLoader.CheckedFile]
            if pending[0].alone {
                batch = [pending.removeFirst().file]
            } else {
                let count = min(Self.batchSize, pending.prefix { !$0.alone }.count)
                batch = pending.prefix(count).map(\.file)
                pending.removeFirst(count)
            }
            let (results, blame) = scanBatch(batch)
            for (index, record) in results { scanned[batch[index].fileHash] = record }
            if let (index, ending) = blame {
                if batch.count > 1 && index > 0 {
                    // Others loaded before it in the same child: scan it again alone before it is blamed.
                    pending.insert((batch[index], true), at: 0)
                } else {
                    scanned[batch[index].fileHash] = ending
                }
                // The ones after it were never reached.
                let rest = batch.suffix(from: index + 1).filter { scanned[$0.fileHash] == nil }
                pending.insert(contentsOf: rest.map { ($0, false) }, at: batch.count > 1 && index > 0 ? 1 : 0)
            }
        }
        records.merge(scanned) { _, new in new }
        // A hang may be the machine's load, not the plugin: it is scanned again next time.
        cache?.store(scanned.filter { $0.value.failure?.code != "\(PluginLoadError.Code.loadHung)" }, over: cached)
        return records
    }

    /// Scans one batch in one child. Returns the records it reported, by position, and the plugin it was loading
    /// when it died or hung, with that failure as a record.
    private func scanBatch(_ batch: [PluginLoader.CheckedFile]) -> ([Int: ScanRecord], (Int, ScanRecord)?) {
        var arguments = ["__scanner", "--protocol", "\(RunnerProtocol.version)", "--parent", "\(getpid())"]
        let limits = ResourceLimits.defaults
        if let value = limits.addressSpace { arguments += ["--address-space", "\(value)"] }
        for file in batch { arguments += ["--file", file.path, "--hash", file.fileHash] }
        let now = Date().timeIntervalSince1970
        func failure(_ index: Int, _ code: PluginLoadError.Code, _ message: String, _ fix: String) -> ScanRecord {
            ScanRecord(
                file: batch[index].path,
                scannedAt: now,
                failure: .init(name: nil, code: "\(code)", message: message, fix: fix)
            )
        }
        let child: ChildProcess
        do {
            child = try ChildProcess(
                executable: environment.executable,
                arguments: arguments,
                extra: batch.map(\.sealedCopy),
                label: "scanner",
                logger: environment.logger
            )
        } catch {
            let results = Dictionary(
                uniqueKeysWithValues: batch.indices.map {
                    ($0, failure($0, .scanFailed, "the plugin scanner could not be run: \(error)", Self.scannerFix))
                }
            )
            return (results, nil)
        }
        var results: [Int: ScanRecord] = [:]
        var loading: Int?
        while true {
            guard child.readable(within: environment.initTimeout) else {
                let ending = child.stop()
                let index = loading ?? results.count
                return (
                    results,
                    (
                        index,
                        failure(
                            index,
                            .loadHung,
                            "loading it did not finish within \(environment.initTimeout.humanText) (a constructor or "
                                + "stephost_plugin_init does not return); the scanner \(ending)",
                            "fix the plugin's initialization, or raise plugins.init-timeout if it is only slow"
                        )
                    )
                )
            }
            let payload: [UInt8]
            switch RunnerProtocol.read(from: child.output, limit: RunnerProtocol.maximumChildFrame, writer: child.pidfd)
            {
            case .success(let read): payload = read
            case .failure:
                let ending = child.finish(within: .seconds(2))
                guard let index = loading else {
                    if results.count == batch.count { return (results, nil) }
                    let index = results.count
                    return (
                        results,
                        (index, failure(index, .scanFailed, "the plugin scanner \(ending) before it", Self.scannerFix))
                    )
                }
                let exited = ending.signal == nil || ending.signal == 0
                return (
                    results,
                    (
                        index,
                        failure(
                            index,
                            exited ? .loadExited : .loadCrashed,
                            "loading it in the scanner \(ending) (in a constructor or in stephost_plugin_init)",
                            exited
                                ? "a plugin must not call exit while it loads; fix the plugin or ask its authors"
                                : "fix the crash in the plugin's initialization, or ask its authors"
                        )
                    )
                )
            }
            do {
                var reader = RunnerProtocol.Reader(payload)
                switch reader.message {
                case .scanning:
                    let index = Int(try reader.u32())
                    try reader.end()
                    guard index == results.count, index < batch.count else {
                        throw RunnerProtocol.ProtocolError("it announced plugin \(index) out of order")
                    }
                    loading = index
                case .hello, .loadFailed:
                    guard try reader.u32() == RunnerProtocol.version else {
                        throw RunnerProtocol.ProtocolError("it speaks another protocol version")
                    }
                    let index = Int(try reader.u32())
                    guard index == loading else {
                        throw RunnerProtocol.ProtocolError("it reported plugin \(index) out of order")
                    }
                    let file = batch[index]
                    if reader.message == .hello {
                        results[index] = ScanRecord(
                            file: file.path,
                            scannedAt: now,
                            descriptor: try Self.descriptor(&reader)
                        )
                    } else {
                        let name = try reader.blob().string
                        let code = try reader.blob().string
                        let message = try reader.blob().string
                        let fix = try reader.blob().string
                        try reader.end()
                        results[index] = ScanRecord(
                            file: file.path,
                            scannedAt: now,
                            failure: .init(
                                name: name.isEmpty ? nil : String(name.prefix(64)),
                                code: PluginLoadError.Code(identifier: code) == nil ? "load-failed" : code,
                                message: String(message.prefix(8192)),
                                fix: String(fix.prefix(2048))
                            )
                        )
                    }
                    loading = nil
                    if results.count == batch.count {
                        _ = child.finish(within: .seconds(2))
                        return (results, nil)
                    }
                default:
                    throw RunnerProtocol.ProtocolError("it sent an unexpected message")
                }
            } catch {
                let ending = child.stop()
                let index = loading ?? results.count
                return (
                    results,
                    (
                        index,
                        failure(
                            index,
                            .loadCrashed,
                            "while loading it, the scanner sent a malformed report (\(error)); it \(ending)",
                            "the plugin corrupts the process that loads it: fix it or ask its authors"
                        )
                    )
                )
            }
        }
    }

    private static let scannerFix =
        "check that the stephost executable is intact and can be run (the scanner is `stephost` itself)"

    /// A descriptor as the scanner reported it, checked as the loader checks a plugin's own: the child ran the
    /// plugin's code, so nothing it says is trusted.
    private static func descriptor(_ reader: inout RunnerProtocol.Reader) throws -> ScanRecord.Descriptor {
        func name(_ blob: RunnerProtocol.Blob) throws -> String {
            try blob.check(readLimit: Names.maximumLength)
            return try blob.withPointer { Names.validate($0, $1) }.get()
        }
        let plugin = try name(try reader.blob())
        let version = String(try reader.blob().string.prefix(128))
        let abi = try reader.u32()
        let count = Int(try reader.u32())
        guard count >= 1, count <= PluginNegotiation.maximumSteps else {
            throw RunnerProtocol.ProtocolError("it reported \(count) steps")
        }
        var steps: [ScanRecord.Step] = []
        for _ in 0..<count {
            let step = try name(try reader.blob())
            let weight = Int(try reader.i32())
            guard weight >= 1, weight != 100, !steps.contains(where: { $0.name == step }) else {
                throw RunnerProtocol.ProtocolError("it reported a step the loader would have refused")
            }
            steps.append(.init(name: step, weight: weight))
        }
        try reader.end()
        return .init(name: plugin, version: version, abi: abi, steps: steps)
    }
}

/// The scanner's results on disk, keyed by SHA-256 of the plugin file: a JSON file of the host's user, mode
/// 0600, written whole and renamed into place. A file that is not the user's own, or is writable by others, or
/// cannot be read, is ignored (everything is scanned again).
struct ScanCache: Sendable {
    let path: String

    /// `$STEPHOST_SCAN_CACHE`, else `$XDG_CACHE_HOME/stephost/scan-cache.json`, else
    /// `~/.cache/stephost/scan-cache.json`; `nil` when none can be named.
    static var defaultPath: String? {
        let environment = ProcessInfo.processInfo.environment
        if let path = environment["STEPHOST_SCAN_CACHE"], !path.isEmpty { return path == "off" ? nil : path }
        if let base = environment["XDG_CACHE_HOME"], base.hasPrefix("/") { return base + "/stephost/scan-cache.json" }
        if let home = environment["HOME"], home.hasPrefix("/") { return home + "/.cache/stephost/scan-cache.json" }
        return nil
    }

    private struct File: Codable {
        var version: Int
        var plugins: [String: ScanRecord]
    }

    func load() -> [String: ScanRecord] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard descriptor >= 0 else { return [:] }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_uid == geteuid(),
            info.st_mode & 0o022 == 0, info.st_size < 64 << 20
        else { return [:] }
        let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: false)
        guard let data = try? handle.readToEnd(),
            let file = try? JSONDecoder().decode(File.self, from: data), file.version == 1
        else { return [:] }
        return file.plugins
    }

    /// Adds `records` to `existing` and writes them; failures only cost a scan next time.
    func store(_ records: [String: ScanRecord], over existing: [String: ScanRecord]) {
        guard !records.isEmpty else { return }
        let directory = (path as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(
            atPath: directory,
            withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700]
        )
        let file = File(version: 1, plugins: existing.merging(records) { _, new in new })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(file) else { return }
        let temporary = "\(path).\(getpid()).tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard descriptor >= 0 else { return }
        let written = data.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        close(descriptor)
        guard written == data.count, rename(temporary, path) == 0 else {
            unlink(temporary)
            return
        }
    }
}
