import Foundation
public import Logging
public import StepHostCore
public import StepHostLoader
import StepHostPipeline
import Synchronization

/// `stephost check-plugin`: one plugin file inspected before it is deployed, as `gst-inspect FILE` does for a
/// GStreamer plugin. Its trust as it lies now, what it exports, what it declares, where its steps fall in a
/// pipeline, and each step run twice in a runner child against a sample operation, the second time on what the
/// first left (a repeated pass, which the step contract says must change nothing more).
///
/// Nothing of the plugin is ever mapped into this process: it is loaded by the scanner child and run by runner
/// children only, from a private copy, so a plugin that crashes, hangs or corrupts memory is reported, never
/// followed.
public struct PluginCheck: Sendable {
    /// The sample operation: `{"parameters": {...}, "fields": {...}}`, or the parameters object alone.
    public var operation: String
    /// The directory whose pipeline the plugin's steps are placed in; `nil`: the plugin alone with the built-in
    /// steps.
    public var pluginsDirectory: String?
    /// How long one step run may take before its runner is stopped.
    public var deadline: Duration
    /// How long loading the plugin (in the scanner, and in each runner) may take.
    public var initTimeout: Duration = .seconds(10)
    public var childExecutable: String
    public var logger: Logger

    /// The sample operation used without `--operation`: the example parameters of the README's quick start.
    public static let defaultOperation =
        #"{"parameters":{"name":"check-plugin","region":"europe-west4","costCenter":"cc-1234","components":[{"name":"monitoring","namespace":"kyma-system"}]},"fields":{}}"#

    public init(
        operation: String = PluginCheck.defaultOperation,
        pluginsDirectory: String? = nil,
        deadline: Duration = .seconds(60),
        childExecutable: String = ChildEnvironment.defaultExecutable,
        logger: Logger
    ) {
        self.operation = operation
        self.pluginsDirectory = pluginsDirectory
        self.deadline = deadline
        self.childExecutable = childExecutable
        self.logger = logger
    }

    /// Why the sample operation cannot be used.
    public struct OperationError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// The sample operation as the steps receive it.
    public func sampleOperation() throws(OperationError) -> OperationRecord {
        let parsed: Any
        do {
            parsed = try JSONSerialization.jsonObject(with: Data(operation.utf8))
        } catch {
            let reason = (error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "\(error)"
            throw OperationError(description: "the sample operation is not valid JSON: \(reason)")
        }
        guard let object = parsed as? [String: Any] else {
            throw OperationError(
                description: "the sample operation is not a JSON object; give {\"parameters\": {...}, \"fields\": "
                    + "{...}} or the parameters object alone"
            )
        }
        let parameters: Any = object["parameters"] ?? object
        let fields = object["parameters"] == nil ? [:] : object["fields"] ?? [:]
        guard let fieldObject = fields as? [String: Any] else {
            throw OperationError(description: "the sample operation's \"fields\" must be a JSON object")
        }
        let requested: ProvisioningParameters
        do {
            let text = try JSONText.compact(parameters)
            requested = try ProvisioningParameters(json: text)
        } catch {
            throw OperationError(description: "the sample operation's parameters are refused: \(error)")
        }
        let now = Date()
        var record = OperationRecord(
            id: "check-\(UUID.random().uuidString.lowercased())",
            instanceID: "check-plugin",
            description: "stephost check-plugin",
            createdAt: now,
            deadline: now.addingTimeInterval(3600),
            parameters: requested
        )
        for (key, value) in fieldObject {
            guard let json = try? JSONText.compact(value) else {
                throw OperationError(description: "the sample operation's field \(key) cannot be written as JSON")
            }
            record.fields[FieldKey(key)] = json
        }
        record.state = .inProgress
        return record
    }

    /// The plugins of ``pluginsDirectory`` (loaded once for every file checked), or why it cannot be used.
    public struct Directory: Sendable {
        var path: String
        var selection: Result<PluginSelection, PluginDirectoryError>
    }

    /// Loads ``pluginsDirectory`` by the scanner, as a host with process isolation would (nothing of it in this
    /// process, and no scan cache written); `nil` without one.
    public func loadDirectory() -> Directory? {
        guard let path = pluginsDirectory else { return nil }
        do {
            let selection = try PluginSelection(
                directory: path,
                disabledPlugins: [],
                isolation: IsolationConfiguration(
                    defaults: PluginPolicy(isolation: .process),
                    initTimeout: initTimeout
                ),
                childExecutable: childExecutable,
                scanCache: false,
                logger: logger
            )
            return Directory(path: path, selection: .success(selection))
        } catch {
            return Directory(path: path, selection: .failure(error))
        }
    }

    /// Checks the plugin file at `path`; `directory` from ``loadDirectory()``.
    public func check(_ path: String, in directory: Directory? = nil) async -> PluginCheckReport {
        var report = PluginCheckReport(file: path)
        let secrets = SecretSet()
        await inspect(path, directory, secrets, &report)
        // Every value any run declared secret, from every run of every step, is removed from everything shown: a
        // secret declared by one run and logged or failed with by another, or stored in a field (JSON-escaped).
        report.scrub(with: Self.scrubber(secrets.values.withLock { $0 }))
        return report
    }

    /// A scrubber for `secrets` as they are and as JSON writes them inside a string.
    static func scrubber(_ secrets: Set<String>) -> SecretScrubber {
        var forms: [String] = []
        for secret in secrets where !secret.isEmpty {
            forms.append(secret)
            let quoted = JSONText.quote(secret)
            let escaped = String(quoted.dropFirst().dropLast())
            forms.append(escaped)
            forms.append(escaped.replacingOccurrences(of: "/", with: "\\/"))
        }
        return SecretScrubber(forms)
    }

    private func inspect(
        _ path: String,
        _ directory: Directory?,
        _ secrets: SecretSet,
        _ report: inout PluginCheckReport
    ) async {
        let sample: OperationRecord
        do {
            sample = try sampleOperation()
        } catch {
            report.add(.error, "operation", error.description, fix: "pass a valid --operation")
            return
        }
        // Opened once, following a link as the host follows one inside its directory; what was opened is what is
        // judged and copied (never the path again).
        let source = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard source >= 0 else {
            let reason = String(cString: strerror(errno))
            var link = stat()
            if lstat(path, &link) == 0 && link.st_mode & S_IFMT == S_IFLNK {
                report.add(
                    .error,
                    "not-regular-file",
                    "it is a symbolic link that leads to no file it can open (\(reason))",
                    fix: "pass the plugin's .so file itself"
                )
            } else if errno == ENOENT || lstat(path, &link) != 0 {
                report.add(
                    .error,
                    "not-found",
                    "it cannot be read (\(reason))",
                    fix: "pass the path of a built plugin .so file"
                )
            } else {
                report.add(
                    .error,
                    "unreadable",
                    "it cannot be opened (\(reason))",
                    fix: "make it readable by this user"
                )
            }
            return
        }
        defer { close(source) }
        var info = stat()
        guard fstat(source, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            report.add(.error, "not-regular-file", "it is not a regular file", fix: "pass the plugin's .so file")
            return
        }
        guard Int(info.st_size) <= PluginLoader.maximumFileSize else {
            report.add(
                .error,
                "too-large",
                "it is \(info.st_size) bytes, more than the \(PluginLoader.maximumFileSize) a plugin may have; it was not read",
                fix: "pass a plugin's shared object"
            )
            return
        }
        // Trust as the file lies now: the host applies the same rules where it is deployed.
        if let (problem, fix) = PluginTrust.problem(descriptor: source, path: path) {
            report.add(
                .warning,
                "untrusted-file",
                "installed like this, the host would refuse it: it \(problem)",
                fix: fix
            )
        }
        let parent = (path as NSString).deletingLastPathComponent
        if let (problem, fix) = PluginTrust.problem(path: parent.isEmpty ? "." : parent) {
            report.add(
                .warning,
                "untrusted-directory",
                "the host would refuse a plugin directory like its own: it \(problem)",
                fix: fix
            )
        }
        if !path.hasSuffix(".so") {
            report.add(
                .warning,
                "file-name",
                "the host loads only files whose names end in .so",
                fix: "name the file NAME.so when you deploy it"
            )
        }
        // A private copy in a directory only this user can write, made new (never through a link): what the
        // loader opens. It is removed as soon as the plugin is loaded: the runners run the loader's sealed copy.
        guard let scratch = Self.privateDirectory() else {
            report.add(
                .error,
                "scratch",
                "no private directory could be made in \(NSTemporaryDirectory()) (\(String(cString: strerror(errno))))",
                fix: "set TMPDIR to a writable directory"
            )
            return
        }
        var removed = false
        func removeScratch() {
            guard !removed else { return }
            removed = true
            try? FileManager.default.removeItem(atPath: scratch)
        }
        defer { removeScratch() }
        var name = (path as NSString).lastPathComponent
        if !name.hasSuffix(".so") || name.hasPrefix(".") { name = "plugin.so" }
        let copy = "\(scratch)/\(name)"
        if let problem = Self.copy(source, to: copy, size: Int(info.st_size)) {
            report.add(.error, "unreadable", "it cannot be copied: \(problem)", fix: "make it readable by this user")
            return
        }
        // What it exports, read from its ELF dynamic symbol table (no code of it runs).
        do {
            let exports = try ExportedSymbols.read(path: copy, maximumSize: PluginLoader.maximumFileSize)
            report.exports = exports
            let others = exports.filter { $0 != "stephost_plugin_init" }
            if !others.isEmpty {
                let shown = others.prefix(5).joined(separator: ", ") + (others.count > 5 ? ", …" : "")
                report.add(
                    .warning,
                    "exports",
                    "it exports \(others.count) symbol\(others.count == 1 ? "" : "s") besides stephost_plugin_init "
                        + "(\(shown)): another plugin or library in the process can bind to them, or they to its",
                    fix: "link with a version script that exports only stephost_plugin_init (-Wl,--version-script="
                        + "exports.map; `stephost new-plugin` writes one), or mark everything else hidden"
                )
            }
        } catch {
            report.add(
                .warning,
                "exports",
                "its exported symbols cannot be listed: \(error)",
                fix: "build it as an ELF shared object"
            )
        }
        // Loaded by the scanner child, as the host loads a plugin it has not seen before.
        var isolation = IsolationConfiguration(defaults: PluginPolicy(isolation: .process), initTimeout: initTimeout)
        isolation.defaults.deadline = deadline
        let selection: PluginSelection
        do {
            selection = try PluginSelection(
                directory: scratch,
                disabledPlugins: [],
                isolation: isolation,
                childExecutable: childExecutable,
                scanCache: false,
                logger: logger
            )
        } catch {
            report.add(.error, "scratch", "\(error)", fix: "set TMPDIR to a private writable directory")
            return
        }
        removeScratch()
        if let broken = selection.broken.first {
            report.plugin = broken.name
            report.add(.error, "\(broken.error.code)", broken.error.message, fix: broken.error.fix)
            return
        }
        guard let plugin = selection.used.first else {
            report.add(.error, "scan-failed", "the loader reported nothing about it", fix: "check the stephost install")
            return
        }
        report.sha256 = plugin.fileHash
        report.plugin = plugin.name
        report.version = plugin.version
        report.abi = plugin.abiVersion.description
        if let exports = report.exports, !exports.contains("stephost_plugin_init") {
            // The loader found the entry point, so the table read is not the one the dynamic linker uses.
            report.exports = nil
            report.add(
                .warning,
                "exports",
                "its symbol table does not list stephost_plugin_init, which the loader found: its exports cannot be "
                    + "told from its section headers",
                fix: "build it with a standard linker and do not alter its section headers"
            )
        }
        placeInPipeline(plugin, directory, &report)
        await runSteps(of: plugin, isolation: isolation, sample: sample, secrets: secrets, &report)
    }

    /// Copies `size` bytes of `source` into a new file at `path` (mode 0644, created, never opened through a link);
    /// why not, or `nil`.
    private static func copy(_ source: Int32, to path: String, size: Int) -> String? {
        let target = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        guard target >= 0 else { return String(cString: strerror(errno)) }
        defer { close(target) }
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var copied = 0
        while copied <= size {
            let read = buffer.withUnsafeMutableBytes { Glibc.read(source, $0.baseAddress, $0.count) }
            if read < 0 {
                if errno == EINTR { continue }
                return String(cString: strerror(errno))
            }
            if read == 0 { return nil }
            copied += read
            guard copied <= PluginLoader.maximumFileSize else { return "it grew past the size a plugin may have" }
            var offset = 0
            while offset < read {
                let written = buffer.withUnsafeBytes { Glibc.write(target, $0.baseAddress! + offset, read - offset) }
                if written < 0 {
                    if errno == EINTR { continue }
                    return String(cString: strerror(errno))
                }
                offset += written
            }
        }
        return nil
    }

    /// Where the plugin's steps fall among the built-in steps and those of ``pluginsDirectory``'s plugins, and what
    /// would conflict there.
    private func placeInPipeline(_ plugin: LoadedPlugin, _ directory: Directory?, _ report: inout PluginCheckReport) {
        var others: [LoadedPlugin] = []
        if let directory {
            report.pipelineDirectory = directory.path
            switch directory.selection {
            case .success(let existing):
                for other in existing.used {
                    if other.name == plugin.name {
                        report.add(
                            .note,
                            "replaces",
                            "it replaces plugin \(other.name) \(other.version) "
                                + "(\((other.file as NSString).lastPathComponent)) of \(directory.path)",
                            fix: "remove or overwrite that file when you deploy this one"
                        )
                    } else {
                        others.append(other)
                    }
                }
                for broken in existing.broken {
                    report.add(
                        .note,
                        "directory-broken",
                        "\(directory.path) has a broken plugin, \((broken.file as NSString).lastPathComponent) "
                            + "(\(broken.error.code)): no host starts there until it is fixed or disabled, and its "
                            + "steps are not compared with this plugin's",
                        fix: broken.error.fix
                    )
                }
            case .failure(let error):
                report.add(.error, "plugins-dir", "\(error)", fix: error.fix)
            }
        }
        for step in plugin.steps {
            for other in others {
                if let clash = other.steps.first(where: { $0.name == step.name }) {
                    report.add(
                        .error,
                        "duplicate-step-name",
                        "step \(step.name) is also declared by plugin \(other.name) "
                            + "(\((other.file as NSString).lastPathComponent)) of \(report.pipelineDirectory ?? ""), "
                            + "weight \(clash.weight): the host would refuse one of them",
                        fix: "give the step a name of its own, for example prefixed with the plugin's name"
                    )
                }
                for tie in other.steps where tie.weight == step.weight && tie.name != step.name {
                    report.add(
                        .note,
                        "same-weight",
                        "step \(step.name) has the weight of \(tie.name) (plugin \(other.name)), \(step.weight): "
                            + "they run in the order of their plugins' names",
                        fix: "choose another weight if one must run before the other"
                    )
                }
            }
        }
        let order = Pipeline.order(
            (others.flatMap(\.steps) + plugin.steps).map(\.identity) + ProvisioningHost.builtInSteps
        )
        report.pipeline = order.enumerated().map { offset, step in
            PluginCheckReport.PipelineEntry(
                position: offset + 1,
                weight: step.weight,
                step: step.name,
                plugin: step.plugin?.name,
                checked: step.plugin?.fileHash == plugin.fileHash && step.plugin?.name == plugin.name
            )
        }
    }

    /// Runs each step of `plugin` twice in runner children, in its pipeline order, each step on what the ones
    /// before it left.
    private func runSteps(
        of plugin: LoadedPlugin,
        isolation: IsolationConfiguration,
        sample: OperationRecord,
        secrets: SecretSet,
        _ report: inout PluginCheckReport
    ) async {
        let executor = BlockingExecutor(name: "stephost-check", maximumThreads: 2)
        let steps = IsolatedSteps.steps(
            of: [plugin],
            isolation: isolation,
            executor: executor,
            stuck: StuckSteps(limit: 1),
            quarantine: QuarantineList(),
            environment: ChildEnvironment(
                executable: childExecutable,
                logger: logger,
                initTimeout: isolation.initTimeout,
                killGrace: isolation.killGrace
            )
        )
        var operation = sample
        for step in steps.sorted(by: { Pipeline.runsBefore($0.identity, $1.identity) }) {
            var entry = PluginCheckReport.StepReport(name: step.identity.name, weight: step.identity.weight)
            let first = await Self.run(step, on: operation, pass: 1, secrets: secrets)
            entry.runs.append(first.report)
            var afterFirst = operation
            if first.result.outcome.kind != .fault { afterFirst.apply(first.result.changes) }
            let second = await Self.run(step, on: afterFirst, pass: 2, secrets: secrets)
            entry.runs.append(second.report)
            var afterSecond = afterFirst
            if second.result.outcome.kind != .fault { afterSecond.apply(second.result.changes) }
            for run in [first, second] {
                if case .fault(let message) = run.result.outcome {
                    report.add(
                        .error,
                        "step-fault",
                        "step \(step.identity.name), run \(run.report.run): \(run.report.message ?? message)",
                        fix: "fix the step: a fault fails the operation and keeps none of its writes"
                    )
                }
            }
            if case .fail = first.result.outcome {
                report.add(
                    .warning,
                    "step-failed",
                    "step \(step.identity.name) failed the sample operation: \(first.report.message ?? "")",
                    fix: "if the sample is at fault, pass one the step accepts with --operation"
                )
            }
            if first.result.outcome.kind != .fault, second.result.outcome.kind != .fault {
                entry.idempotencyChecked = true
                entry.differences = Self.differences(first, second, afterFirst, afterSecond)
                if !entry.differences.isEmpty {
                    report.add(
                        .warning,
                        "not-idempotent",
                        "step \(step.identity.name) did not do the same the second time: "
                            + entry.differences.joined(separator: "; "),
                        fix: "a step runs again on every retry and after a restart: read back what an earlier run "
                            + "stored in the operation's fields instead of doing it again"
                    )
                }
            }
            report.steps.append(entry)
            operation = afterSecond
        }
    }

    /// What the second run did differently, for the idempotency check: outcome, fields it changed once they
    /// were already set, overrides and labels.
    private static func differences(
        _ first: (result: StepResult, report: PluginCheckReport.Run),
        _ second: (result: StepResult, report: PluginCheckReport.Run),
        _ afterFirst: OperationRecord,
        _ afterSecond: OperationRecord
    ) -> [String] {
        var differences: [String] = []
        if first.result.outcome.kind == .done && second.result.outcome.kind != .done {
            differences.append(
                "the first run finished, the second ended with \(second.result.outcome.kind.rawValue)"
                    + (second.report.message.map { " (\($0))" } ?? "")
            )
        }
        let keys = Set(afterFirst.fields.keys).union(afterSecond.fields.keys).sorted()
        let changed = keys.filter { afterFirst.fields[$0] != afterSecond.fields[$0] }
        if !changed.isEmpty {
            differences.append(
                "it changed field\(changed.count == 1 ? "" : "s") "
                    + changed.prefix(5).map { "\($0.string)" }.joined(separator: ", ")
                    + " again"
            )
        }
        if first.report.overrides != second.report.overrides {
            differences.append(
                "its overrides differ (\(first.report.overrides.count) then \(second.report.overrides.count))"
            )
        }
        if first.report.labels != second.report.labels {
            differences.append("its labels differ")
        }
        return differences
    }

    /// One run of `step`, with what it did as the report shows it (secret values removed).
    private static func run(
        _ step: any Step,
        on operation: OperationRecord,
        pass: Int,
        secrets: SecretSet
    ) async -> (result: StepResult, report: PluginCheckReport.Run) {
        let logs = Mutex<[StepLogLine]>([])
        let checkpoints = Mutex<[OperationChanges]>([])
        let context = StepContext(
            input: InputCreator(),
            pass: pass,
            minimumLogLevel: .debug,
            checkpoint: { changes in
                checkpoints.withLock { $0.append(changes) }
                var stored = operation
                stored.apply(changes)
                return stored
            },
            log: { line, declared in
                // Streamed lines carry the secrets declared so far: kept, so a run that faults after declaring a
                // secret (and loses its result) still has it removed from what is shown.
                secrets.values.withLock { $0.formUnion(declared) }
                logs.withLock { $0.append(line) }
            }
        )
        let started = ContinuousClock.now
        let result = await step.run(operation, context: context)
        let elapsed = ContinuousClock.now - started
        secrets.values.withLock { $0.formUnion(result.declaredSecrets) }
        let scrubber = SecretScrubber(result.declaredSecrets)
        var run = PluginCheckReport.Run(run: pass, outcome: result.outcome.kind.rawValue)
        switch result.outcome {
        case .done: break
        case .retry(let after): run.retryAfterMilliseconds = after.map { Int($0.timeInterval * 1000) }
        case .fail(let message), .fault(let message): run.message = scrubber.scrub(message)
        }
        run.milliseconds = (elapsed.timeInterval * 1000 * 10).rounded() / 10
        // Shown as written again (escapes decoded, then written one way), so a secret cannot hide in a field behind
        // another spelling of its characters (\u002f for /).
        run.fields = result.changes.fields.map {
            (key: $0.key, json: $0.json.map { scrubber.scrub(Self.canonical($0)) })
        }
        run.overrides =
            result.componentOverrides.map {
                PluginCheckReport.OverrideEntry(
                    component: $0.component,
                    key: $0.override.key,
                    value: $0.override.redactedValue,
                    secret: $0.override.secret
                )
            }
            + result.globalOverrides.map {
                PluginCheckReport.OverrideEntry(component: nil, key: $0.key, value: $0.redactedValue, secret: $0.secret)
            }
        run.labels = result.labels.map { "\($0.key)=\(scrubber.scrub($0.value))" }
        run.logs = (logs.withLock { $0 } + result.logs).map { "\($0.level): \(scrubber.scrub($0.message))" }
        run.checkpoints = checkpoints.withLock { $0.count }
        run.discarded = result.outcome.kind == .fault
        return (result, run)
    }

    /// `json` parsed and written again compactly; as it is when it cannot be parsed.
    static func canonical(_ json: String) -> String {
        guard let value = try? JSONSerialization.jsonObject(with: Data(json.utf8), options: [.fragmentsAllowed]),
            let text = try? JSONText.compact(value)
        else { return json }
        return text
    }

    private static func privateDirectory() -> String? {
        var template = Array(
            "\(NSTemporaryDirectory().hasSuffix("/") ? NSTemporaryDirectory() : NSTemporaryDirectory() + "/")stephost-check.XXXXXX"
                .utf8CString
        )
        guard let made = mkdtemp(&template) else { return nil }
        return String(cString: made)
    }
}

/// The secret values declared during one check, by any run of any step.
final class SecretSet: Sendable {
    let values = Mutex<Set<String>>([])
}

/// What ``PluginCheck`` found in one plugin file.
public struct PluginCheckReport: Sendable {
    /// How bad a finding is: an error makes the plugin broken, a warning is reported (and sets the exit status),
    /// a note only informs.
    public enum Level: String, Sendable {
        case error, warning, note
    }

    public struct Finding: Sendable {
        public var level: Level
        public var code: String
        public var message: String
        public var fix: String
    }

    /// The overall result, which sets `check-plugin`'s exit status.
    public enum Verdict: String, Sendable {
        case conformant, warnings, broken
    }

    public struct PipelineEntry: Sendable {
        public var position: Int
        public var weight: Int
        public var step: String
        /// `nil` for a built-in step.
        public var plugin: String?
        /// A step of the checked plugin.
        public var checked: Bool
    }

    public struct OverrideEntry: Sendable, Hashable {
        /// `nil` for a global override.
        public var component: String?
        public var key: String
        /// `<redacted>` when secret.
        public var value: String
        public var secret: Bool
    }

    /// One run of one step.
    public struct Run: Sendable {
        public var run: Int
        public var outcome: String
        public var message: String?
        public var retryAfterMilliseconds: Int?
        public var milliseconds: Double = 0
        /// Field changes: key and JSON value, `nil` for a removal.
        public var fields: [(key: String, json: String?)] = []
        public var overrides: [OverrideEntry] = []
        public var labels: [String] = []
        public var logs: [String] = []
        public var checkpoints = 0
        /// The run faulted: none of its writes since its last checkpoint would be kept.
        public var discarded = false

        init(run: Int, outcome: String) {
            self.run = run
            self.outcome = outcome
        }
    }

    public struct StepReport: Sendable {
        public var name: String
        public var weight: Int
        public var runs: [Run] = []
        /// What the second run did differently from the first; empty when it did the same.
        public var differences: [String] = []
        /// Whether the runs could be compared: not when either faulted.
        public var idempotencyChecked = false
        /// Whether the second run did the same as the first; `nil` when they could not be compared.
        public var idempotent: Bool? { idempotencyChecked ? differences.isEmpty : nil }
    }

    public var file: String
    public var sha256: String?
    public var plugin: String?
    public var version: String?
    public var abi: String?
    public var exports: [String]?
    public var pipelineDirectory: String?
    public var pipeline: [PipelineEntry] = []
    public var steps: [StepReport] = []
    public var findings: [Finding] = []

    init(file: String) { self.file = file }

    mutating func add(_ level: Level, _ code: String, _ message: String, fix: String) {
        findings.append(Finding(level: level, code: code, message: message, fix: fix))
    }

    /// Removes `scrubber`'s secrets from every text the report shows.
    mutating func scrub(with scrubber: SecretScrubber) {
        let clean = scrubber.scrub
        for index in findings.indices { findings[index].message = clean(findings[index].message) }
        for index in pipeline.indices { pipeline[index].step = clean(pipeline[index].step) }
        for step in steps.indices {
            steps[step].differences = steps[step].differences.map(clean)
            for run in steps[step].runs.indices {
                var value = steps[step].runs[run]
                value.message = value.message.map(clean)
                value.fields = value.fields.map { (key: clean($0.key), json: $0.json.map(clean)) }
                value.overrides = value.overrides.map {
                    OverrideEntry(
                        component: $0.component.map(clean),
                        key: clean($0.key),
                        value: clean($0.value),
                        secret: $0.secret
                    )
                }
                value.labels = value.labels.map(clean)
                value.logs = value.logs.map(clean)
                steps[step].runs[run] = value
            }
        }
    }

    public var verdict: Verdict {
        if findings.contains(where: { $0.level == .error }) { return .broken }
        if findings.contains(where: { $0.level == .warning }) { return .warnings }
        return .conformant
    }
}
