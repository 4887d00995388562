import Foundation
import Logging
import StepHostCore
import StepHostSystem
import Synchronization

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
/// descriptors beyond its pipes, resource limits and a deadline. Each plugin gets a child of its own (a few run at
/// once): whatever a plugin's code does in its child (crash, exit, hang, write forged reports to the pipe) can
/// concern only its own report.
/// Results are cached by SHA-256 of the file (``ScanCache``): unchanged plugins are not scanned again.
struct PluginScanner {
    let environment: ChildEnvironment
    let cache: ScanCache?

    /// The records of `files`, from the cache or a scan.
    func records(for files: [PluginLoader.CheckedFile]) -> [String: ScanRecord] {
        var records: [String: ScanRecord] = [:]
        let cached = cache?.load() ?? [:]
        var pending: [PluginLoader.CheckedFile] = []
        var seen: Set<String> = []
        for file in files {
            if let record = cached[ScanCache.key(file.fileHash)] {
                records[file.fileHash] = record
            } else if seen.insert(file.fileHash).inserted {
                pending.append(file)
            }
        }
        guard !pending.isEmpty else { return records }
        // One child per plugin, never a batch: code that runs in a scanner can write to its pipe, so a plugin
        // loaded in the same child as others could forge their reports (say a crashing plugin is fine, and have
        // the host map it), and the forgery would be cached under their hashes. Children run a few at a time.
        let found = Mutex<[String: ScanRecord]>([:])
        let files = pending
        DispatchQueue.concurrentPerform(iterations: files.count) { index in
            let file = files[index]
            let (results, blame) = scanBatch([file])
            let record =
                results[0] ?? blame?.1
                ?? ScanRecord(
                    file: file.path,
                    scannedAt: Date().timeIntervalSince1970,
                    failure: .init(
                        name: nil,
                        code: "\(PluginLoadError.Code.scanFailed)",
                        message: "the scanner reported nothing about it",
                        fix: Self.scannerFix
                    )
                )
            found.withLock { $0[file.fileHash] = record }
        }
        let scanned = found.withLock { $0 }
        records.merge(scanned) { _, new in new }
        // A hang may be the machine's load, not the plugin: it is scanned again next time.
        let kept = scanned.filter { $0.value.failure?.code != "\(PluginLoadError.Code.loadHung)" }
        cache?.store(
            Dictionary(uniqueKeysWithValues: kept.map { (ScanCache.key($0.key), $0.value) }),
            over: cached
        )
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
                label: "scanner: \(batch.map { ($0.path as NSString).lastPathComponent }.joined(separator: ", "))",
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
        /// Stops the scanner and blames the plugin it was loading (or was about to) with `message(ending)`.
        func stopAndBlame(
            _ code: PluginLoadError.Code,
            _ message: (ChildProcess.Ending) -> String,
            fix: String
        ) -> ([Int: ScanRecord], (Int, ScanRecord)?) {
            let ending = child.stop()
            let index = loading ?? results.count
            return (results, (index, failure(index, code, message(ending), fix)))
        }
        /// The plugin it was loading hung, as `what` says.
        func hung(_ what: String) -> ([Int: ScanRecord], (Int, ScanRecord)?) {
            stopAndBlame(
                .loadHung,
                {
                    "\(what) within \(environment.initTimeout.humanText) (a constructor or stephost_plugin_init "
                        + "does not return or stalls it); the scanner \($0)"
                },
                fix: "fix the plugin's initialization, or raise plugins.init-timeout if it is only slow"
            )
        }
        while true {
            guard child.readable(within: environment.initTimeout) else { return hung("loading it did not finish") }
            let payload: [UInt8]
            switch RunnerProtocol.read(
                from: child.output,
                limit: RunnerProtocol.maximumChildFrame,
                writer: child.pidfd,
                until: ContinuousClock.now + environment.initTimeout
            ) {
            case .success(let read): payload = read
            case .failure(.timedOut):
                return hung("the scanner did not finish its report on it")
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
                        // A scanner ends with status 0 after its last report. One that crashed or exited otherwise
                        // after it (a report the plugin forged from a constructor, then the crash of its real load;
                        // a destructor that crashes) makes the last plugin broken, whatever the report said.
                        let ending = child.finish(within: environment.initTimeout)
                        guard ending.exitCode == 0 else {
                            let index = batch.count - 1
                            let exited = ending.signal == nil || ending.signal == 0
                            results[index] = nil
                            return (
                                results,
                                (
                                    index,
                                    failure(
                                        index,
                                        exited ? .loadExited : .loadCrashed,
                                        "the scanner that loaded it \(ending) after it reported on it (in a "
                                            + "constructor, stephost_plugin_init or a destructor)",
                                        "a plugin must load, report and unload cleanly; fix it or ask its authors"
                                    )
                                )
                            )
                        }
                        return (results, nil)
                    }
                default:
                    throw RunnerProtocol.ProtocolError("it sent an unexpected message")
                }
            } catch {
                return stopAndBlame(
                    .loadCrashed,
                    { "while loading it, the scanner sent a malformed report (\(error)); it \($0)" },
                    fix: "the plugin corrupts the process that loads it: fix it or ask its authors"
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
        // As the loader reads a plugin's own: 1 to 128 bytes of UTF-8, else the report is refused.
        let versionBlob = try reader.blob()
        try versionBlob.check(readLimit: 128)
        guard case .success(let version) = versionBlob.withPointer({ Names.read($0, $1, limit: 128) }), !version.isEmpty
        else { throw RunnerProtocol.ProtocolError("it reported a version the loader would have refused") }
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

/// The scanner's results on disk, keyed by the host's build and the SHA-256 of the plugin file (``key(_:)``): a
/// JSON file of the host's user, mode 0600, written whole and renamed into place. A file that is not the user's own, or is writable by others, or
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

    /// The key of a plugin file's record: this host's build-id with the file's SHA-256. What a scan finds depends
    /// on the host that ran it as much as on the plugin (the ABI versions it offers, its checks, how it was built),
    /// so a record from another build of stephost sharing the cache is never used.
    static func key(_ fileHash: String) -> String { "\(hostBuild):\(fileHash)" }

    /// This executable's GNU build-id in hex; without one, its version with the executable's size and change time.
    static let hostBuild: String = {
        var bytes = [UInt8](repeating: 0, count: 64)
        let length = stephost_build_id(&bytes, bytes.count)
        if length > 0 { return bytes.prefix(length).map { String(format: "%02x", $0) }.joined() }
        var info = stat()
        let executable = stat("/proc/self/exe", &info) == 0 ? "\(info.st_size)-\(info.st_ctim.tv_sec)" : "unknown"
        return "\(ABIVersion.current)-\(executable)"
    }()

    private struct File: Codable {
        var version: Int
        var plugins: [String: ScanRecord]
    }

    /// 2: keys name the host's build as well as the plugin file's hash (1 had the hash alone).
    static let formatVersion = 2

    /// The most builds the cache remembers (the most recently scanned).
    static let maximumEntries = 4096

    func load() -> [String: ScanRecord] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard descriptor >= 0 else { return [:] }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_uid == geteuid(),
            info.st_mode & 0o022 == 0, info.st_size < 16 << 20
        else { return [:] }
        let handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: false)
        guard let data = try? handle.readToEnd(),
            let file = try? JSONDecoder().decode(File.self, from: data), file.version == Self.formatVersion
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
        // Bounded: the newest entries only, so a cache that saw many builds over time stays small to read.
        var plugins = existing.merging(records) { _, new in new }
        if plugins.count > Self.maximumEntries {
            let kept = plugins.sorted { $0.value.scannedAt > $1.value.scannedAt }.prefix(Self.maximumEntries)
            plugins = Dictionary(uniqueKeysWithValues: kept.map { ($0.key, $0.value) })
        }
        let file = File(version: Self.formatVersion, plugins: plugins)
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
