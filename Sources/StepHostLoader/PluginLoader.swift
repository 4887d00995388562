import Crypto
import Foundation
import Glibc
public import Logging
import StepHostABI
import StepHostCore
import StepHostSystem

/// Loads every plugin in a plugin directory: discovery, trust checks, `dlopen`, ABI negotiation and
/// descriptor validation, then the checks across plugins (unique plugin and step names).
///
/// A plugin that fails any check is reported as a ``BrokenPlugin`` with the check and the fix, and
/// none of its steps are used; the other plugins still load. Plugins are never unloaded: a Swift image
/// cannot be `dlclose`d safely, so a broken plugin that got as far as `dlopen` stays mapped, unused.
public struct PluginLoader: Sendable {
    /// The ABI versions this host offers to plugins.
    public static let supportedVersions = ABIVersion(major: 1, minor: 0)...ABIVersion.current

    private let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    /// Loads the plugins of `directory`.
    ///
    /// - Parameter skipping: files never to open, by file name (`x.so`), file name without `.so` (`x`) or path:
    ///   the escape hatch for a plugin that crashes or hangs while it loads.
    /// - Throws: ``PluginDirectoryError`` when the directory itself is missing or untrusted; then nothing
    ///   is loaded from it.
    public func load(directory: String, skipping: Set<String> = []) throws(PluginDirectoryError) -> PluginCatalog {
        let (pluginDirectory, checked, unchecked, skipped) = try check(directory: directory, skipping: skipping)
        var loaded: [LoadedPlugin] = []
        var broken = unchecked
        for file in checked {
            do {
                let plugin = try load(file)
                logger.debug(
                    "loaded plugin",
                    metadata: ["plugin": "\(plugin.name)", "file": "\(plugin.file)", "abi": "\(plugin.abiVersion)"]
                )
                loaded.append(plugin)
            } catch {
                logger.debug("broken plugin", metadata: ["file": "\(file.path)", "error": "\(error.error)"])
                broken.append(error)
            }
        }
        return Self.catalog(pluginDirectory, loaded: loaded, broken: broken, skipped: skipped)
    }

    /// The directory's candidates that are not skipped, checked before any of their code runs: the files that
    /// passed, the broken ones and the skipped ones.
    private func check(
        directory: String,
        skipping: Set<String>
    ) throws(PluginDirectoryError) -> (PluginDirectory, [CheckedFile], [BrokenPlugin], [String]) {
        let pluginDirectory = try PluginDirectory(directory)
        var checked: [CheckedFile] = []
        var broken: [BrokenPlugin] = []
        var skipped: [String] = []
        for candidate in try pluginDirectory.candidates() {
            if Self.matches(candidate, skipping) {
                logger.debug("plugin file disabled: not opened", metadata: ["file": "\(candidate.path)"])
                skipped.append(candidate.path)
                continue
            }
            do {
                checked.append(try inspect(candidate, in: pluginDirectory))
            } catch {
                broken.append(error)
            }
        }
        return (pluginDirectory, checked, broken, skipped)
    }

    /// The catalog of what loaded, after the checks across plugins.
    private static func catalog(
        _ directory: PluginDirectory,
        loaded: [LoadedPlugin],
        broken: [BrokenPlugin],
        skipped: [String]
    ) -> PluginCatalog {
        let (accepted, conflicting) = rejectConflicts(loaded)
        return PluginCatalog(
            directory: directory.realPath,
            plugins: accepted.sorted { $0.name < $1.name },
            broken: (broken + conflicting).sorted { $0.file < $1.file },
            skipped: skipped.sorted()
        )
    }

    /// Loads the plugins of `directory` the way a host does: every plugin is first loaded by the scanner child
    /// (unless its file's hash is in the scan cache), and only those the scanner accepted are loaded here, into
    /// this process (`in-process` isolation) or, for `process` isolation, only described, their steps to run in
    /// runner children.
    ///
    /// - Parameter isolation: the isolation of a plugin, by its declared name and its file name.
    public func load(
        directory: String,
        skipping: Set<String> = [],
        scanning environment: ChildEnvironment,
        cache: Bool = true,
        isolation: (_ name: String, _ fileName: String) -> Isolation
    ) throws(PluginDirectoryError) -> PluginCatalog {
        let (pluginDirectory, checked, unchecked, skipped) = try check(directory: directory, skipping: skipping)
        var broken = unchecked
        let scanner = PluginScanner(
            environment: environment,
            cache: cache ? ScanCache.defaultPath.map(ScanCache.init) : nil
        )
        let records = scanner.records(for: checked)
        var loaded: [LoadedPlugin] = []
        for file in checked {
            guard let record = records[file.fileHash], let descriptor = record.descriptor else {
                let failure = records[file.fileHash]?.failure
                let code = failure.flatMap { PluginLoadError.Code(identifier: $0.code) } ?? .scanFailed
                broken.append(
                    BrokenPlugin(
                        file: file.path,
                        name: failure?.name,
                        error: PluginLoadError(
                            code,
                            failure?.message ?? "the scanner reported nothing about it",
                            fix: failure?.fix ?? "run the command again"
                        )
                    )
                )
                close(file.sealedCopy)
                continue
            }
            let fileName = (file.path as NSString).lastPathComponent
            if isolation(descriptor.name, fileName) == .process {
                loaded.append(Self.described(file, descriptor))
                continue
            }
            do throws(BrokenPlugin) {
                var plugin = try load(file)
                guard plugin.name == descriptor.name, plugin.steps.map(\.name) == descriptor.steps.map(\.name) else {
                    throw BrokenPlugin(
                        file: file.path,
                        name: plugin.name,
                        error: PluginLoadError(
                            .invalidDescriptor,
                            "it declared other names when the host loaded it than in the scanner",
                            fix: "a plugin's descriptor must not depend on where or when it is loaded"
                        )
                    )
                }
                plugin.sealedCopy = file.sealedCopy
                loaded.append(plugin)
            } catch {
                broken.append(error)
            }
        }
        return Self.catalog(pluginDirectory, loaded: loaded, broken: broken, skipped: skipped)
    }

    /// A plugin to run in runner children only, as the scanner described it.
    private static func described(_ file: CheckedFile, _ descriptor: ScanRecord.Descriptor) -> LoadedPlugin {
        let steps = descriptor.steps.enumerated().map { index, step in
            PluginStep(
                name: step.name,
                weight: step.weight,
                plugin: PluginProvenance(
                    name: descriptor.name,
                    version: descriptor.version,
                    file: file.path,
                    fileHash: file.fileHash,
                    stepIndex: index
                ),
                entry: nil
            )
        }
        var plugin = LoadedPlugin(
            name: descriptor.name,
            version: descriptor.version,
            file: file.path,
            fileHash: file.fileHash,
            abiVersion: ABIVersion(packed: descriptor.abi),
            steps: steps
        )
        plugin.isolation = .process
        plugin.sealedCopy = file.sealedCopy
        return plugin
    }

    /// The largest file the loader reads as a plugin (256 MiB); a larger one is refused before any of it is read.
    public static let maximumFileSize = 256 * 1024 * 1024

    /// Why a sealed copy could not be made.
    struct CopyError: Error {
        var code: PluginLoadError.Code
        var message: String
        var fix: String
    }

    /// Streams `size` bytes of `descriptor` into a new sealed memfd, hashing them on the way (SHA-256, in hex).
    static func sealedCopy(of descriptor: Int32, size: Int, name: String) throws(CopyError) -> (Int32, String) {
        let copy = stephost_memfd_create("stephost-plugin:\(name)")
        guard copy >= 0 else {
            throw CopyError(
                code: .unreadable,
                message: "no in-memory copy can be made to load it from (\(lastError()))",
                fix: "check the host's memory and file descriptor limits"
            )
        }
        var hasher = SHA256()
        // Sized to the file (up to 1 MiB) and not zeroed: a plugin of a few KiB costs a few KiB here, not a
        // fresh, zero-filled MiB per plugin.
        let capacity = min(max(size + 1, 4096), 1 << 20)
        var buffer = [UInt8](unsafeUninitializedCapacity: capacity) { _, initialized in initialized = capacity }
        var total = 0
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else {
                close(copy)
                throw CopyError(
                    code: .unreadable,
                    message: "it cannot be read (\(lastError()))",
                    fix: "check its permissions"
                )
            }
            if count == 0 { break }
            total += count
            guard total <= size else { break }  // it grew while being read: reported below
            hasher.update(data: buffer[0..<count])
            var written = 0
            while written < count {
                let result = buffer.withUnsafeBytes { write(copy, $0.baseAddress! + written, count - written) }
                if result < 0 && errno == EINTR { continue }
                guard result > 0 else {
                    close(copy)
                    throw CopyError(
                        code: .unreadable,
                        message: "its in-memory copy cannot be written (\(lastError()))",
                        fix: "check the host's memory limits"
                    )
                }
                written += result
            }
        }
        guard total == size else {
            close(copy)
            throw CopyError(
                code: .fileChanged,
                message: "it changed while it was being read (\(size) bytes when checked, \(total) read)",
                fix: "run the command again once the file is in place"
            )
        }
        guard stephost_memfd_seal(copy) == 0 else {
            close(copy)
            throw CopyError(
                code: .unreadable,
                message: "its in-memory copy cannot be sealed (\(lastError()))",
                fix: "use a kernel with memfd sealing (Linux 3.17 or later)"
            )
        }
        return (copy, hasher.finalize().hexString)
    }

    /// Whether `names` names the candidate's file: its name, its name without `.so`, or its path.
    static func matches(_ candidate: PluginDirectory.Candidate, _ names: Set<String>) -> Bool {
        names.contains(candidate.name) || names.contains(String(candidate.name.dropLast(3)))
            || names.contains(candidate.path)
    }

    /// A plugin file that passed the checks made before any of its code runs (symlinks, file type, trust, size),
    /// copied into a sealed in-memory file and hashed. The copy is what gets loaded, here or in a child.
    struct CheckedFile: Sendable {
        var path: String
        var name: String
        /// The sealed memfd holding the checked bytes; kept open for the life of the process.
        var sealedCopy: Int32
        var fileHash: String
    }

    /// Checks a candidate file before any of its code runs, and copies it into a sealed in-memory file.
    func inspect(
        _ candidate: PluginDirectory.Candidate,
        in directory: PluginDirectory
    ) throws(BrokenPlugin)
        -> CheckedFile
    {
        func broken(_ code: PluginLoadError.Code, _ message: String, fix: String) -> BrokenPlugin {
            BrokenPlugin(file: candidate.path, error: PluginLoadError(code, message, fix: fix))
        }

        // A symlink may point at another file of the directory, never outside it.
        var linkInfo = stat()
        guard lstat(candidate.path, &linkInfo) == 0 else {
            throw broken(.unreadable, "it cannot be inspected (\(Self.lastError()))", fix: "check its permissions")
        }
        var target = candidate.path
        if linkInfo.st_mode & S_IFMT == S_IFLNK {
            guard let resolved = realpath(candidate.path, nil) else {
                switch errno {
                case ELOOP:
                    throw broken(
                        .notRegularFile,
                        "it is a symlink loop (following it leads back to itself)",
                        fix: "remove it or point it at a plugin file"
                    )
                case ENOENT:
                    throw broken(
                        .notRegularFile,
                        "it is a dangling symlink",
                        fix: "remove it or point it at a plugin file"
                    )
                default:
                    throw broken(
                        .unreadable,
                        "its symlink cannot be followed (\(Self.lastError()))",
                        fix: "check the permissions of its target"
                    )
                }
            }
            target = String(cString: resolved)
            free(resolved)
            let parent = target.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(
                separator: "/"
            )
            guard parent == directory.realPath || (parent.isEmpty && directory.realPath == "/") else {
                throw broken(
                    .symlinkEscape,
                    "it is a symlink to \(target), outside the plugin directory \(directory.realPath)",
                    fix: "copy the plugin into the plugin directory instead of linking to it"
                )
            }
        }

        // Check the opened file, not the path; O_NONBLOCK so a FIFO named *.so cannot hang the host.
        let descriptor = open(target, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard descriptor >= 0 else {
            throw broken(.unreadable, "it cannot be opened (\(Self.lastError()))", fix: "check its permissions")
        }
        defer { close(descriptor) }
        var opened = stat()
        guard fstat(descriptor, &opened) == 0 else {
            throw broken(.unreadable, "it cannot be inspected (\(Self.lastError()))", fix: "check its permissions")
        }
        guard opened.st_mode & S_IFMT == S_IFREG else {
            throw broken(.notRegularFile, "it is not a regular file", fix: "remove it from the plugin directory")
        }
        if let problem = Trust.problem(with: opened) {
            throw broken(
                .untrustedFile,
                "refusing to load it: it \(problem)",
                fix: Trust.fix(for: opened, path: target)
            )
        }

        guard opened.st_size <= Self.maximumFileSize else {
            throw broken(
                .tooLarge,
                "it is \(opened.st_size) bytes, more than the \(Self.maximumFileSize) a plugin may have; it was not read",
                fix: "remove it from the plugin directory; a plugin is a shared object, not a data file"
            )
        }

        // Load what was checked: the bytes are copied, while being hashed, from the checked descriptor into a
        // sealed in-memory file, and that copy is what dlopen maps. A rename of the path in between, or a new
        // build copied over the file while the host runs, cannot change the code that runs; the hash in the
        // step history names exactly that code.
        let copy: (descriptor: Int32, fileHash: String)
        do {
            copy = try Self.sealedCopy(of: descriptor, size: Int(opened.st_size), name: candidate.name)
        } catch {
            throw broken(error.code, error.message, fix: error.fix)
        }
        return CheckedFile(
            path: candidate.path,
            name: candidate.name,
            sealedCopy: copy.descriptor,
            fileHash: copy.fileHash
        )
    }

    /// Maps a checked file's sealed copy and runs its `stephost_plugin_init` in this process.
    ///
    /// The copy's descriptor stays open for the life of the process, like the mapping: its /proc/self/fd path
    /// must never be reused for another plugin while this one is loaded.
    func load(_ file: CheckedFile) throws(BrokenPlugin) -> LoadedPlugin {
        try Self.load(sealedCopy: file.sealedCopy, file: file.path, fileHash: file.fileHash, logger: logger)
    }

    /// Maps the sealed copy at `descriptor` (made by ``inspect(_:in:)``, here or in the host that started this
    /// child) and negotiates with the plugin; `file` and `fileHash` name it in reports.
    static func load(
        sealedCopy descriptor: Int32,
        file: String,
        fileHash: String,
        logger: Logger
    ) throws(BrokenPlugin)
        -> LoadedPlugin
    {
        func broken(_ code: PluginLoadError.Code, _ message: String, fix: String) -> BrokenPlugin {
            BrokenPlugin(file: file, error: PluginLoadError(code, message, fix: fix))
        }
        // The host's own layouts of the ABI structs first, before any plugin can bring others.
        ABIMetadata.pinned
        // The plugin's constructors and init run here: an exit() from them must not read as the host's success.
        stephost_enter_plugin_code()
        defer { stephost_leave_plugin_code() }
        guard let handle = dlopen("/proc/self/fd/\(descriptor)", RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE) else {
            throw broken(
                .loadFailed,
                "dlopen failed: \(Self.dlopenError())",
                fix: "make sure it is a shared object built for this machine "
                    + "(`swift build` of a .dynamic product, or `cc -shared -fPIC`) and that its libraries are installed"
            )
        }

        _ = dlerror()
        guard let symbol = dlsym(handle, STEPHOST_ENTRY_SYMBOL) else {
            throw broken(
                .missingEntrySymbol,
                "it does not export \(STEPHOST_ENTRY_SYMBOL)",
                fix: "define `stephost_status stephost_plugin_init(const stephost_host_offer *, "
                    + "stephost_plugin_descriptor *)` with C linkage and default visibility "
                    + "(Swift: `@c @implementation public func stephost_plugin_init`)"
            )
        }
        let entry = unsafeBitCast(symbol, to: stephost_plugin_init_fn.self)
        do {
            return try PluginNegotiation(file: file, fileHash: fileHash, logger: logger).run(entry)
        } catch {
            throw BrokenPlugin(file: file, name: error.name, error: error.error)
        }
    }

    /// Splits off plugins whose name or step names collide with another plugin's: all of them are broken,
    /// since the host cannot tell which one the operator meant.
    static func rejectConflicts(_ plugins: [LoadedPlugin]) -> (accepted: [LoadedPlugin], broken: [BrokenPlugin]) {
        var filesByPlugin: [String: [String]] = [:]
        var pluginsByStep: [String: [LoadedPlugin]] = [:]
        for plugin in plugins {
            filesByPlugin[plugin.name, default: []].append(plugin.file)
            for step in plugin.steps { pluginsByStep[step.name, default: []].append(plugin) }
        }
        var accepted: [LoadedPlugin] = []
        var broken: [BrokenPlugin] = []
        for plugin in plugins {
            if let files = filesByPlugin[plugin.name], files.count > 1 {
                let others = files.filter { $0 != plugin.file }.joined(separator: ", ")
                broken.append(
                    BrokenPlugin(
                        file: plugin.file,
                        name: plugin.name,
                        error: PluginLoadError(
                            .duplicatePluginName,
                            "plugin name '\(plugin.name)' is also declared by \(others)",
                            fix: "remove one of the files, or give each plugin its own name"
                        )
                    )
                )
                continue
            }
            let clashes = plugin.steps.compactMap { step -> String? in
                let owners = (pluginsByStep[step.name] ?? []).filter { $0.file != plugin.file }
                guard !owners.isEmpty else { return nil }
                let where_ = owners.map { "plugin '\($0.name)' (\($0.file))" }.joined(separator: ", ")
                return "step '\(step.name)' is also declared by \(where_)"
            }
            if !clashes.isEmpty {
                broken.append(
                    BrokenPlugin(
                        file: plugin.file,
                        name: plugin.name,
                        error: PluginLoadError(
                            .duplicateStepName,
                            clashes.joined(separator: "; "),
                            fix: "step names are unique across all plugins: rename the step in one of the plugins"
                        )
                    )
                )
                continue
            }
            accepted.append(plugin)
        }
        return (accepted, broken)
    }

    private static func lastError() -> String {
        String(cString: strerror(errno))
    }

    static func dlopenError() -> String {
        guard let message = dlerror() else { return "unknown error" }
        return String(cString: message)
    }
}
