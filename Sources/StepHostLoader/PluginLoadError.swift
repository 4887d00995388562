/// Why a plugin file is broken: the check it failed, what was found, and how to fix it.
///
/// Codes can be matched (`error.code == .abiVersion`) and are stable strings in JSON output.
public struct PluginLoadError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The check a plugin failed.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case notRegularFile = "not-regular-file"
            case untrustedFile = "untrusted-file"
            case symlinkEscape = "symlink-escape"
            case unreadable
            case loadFailed = "load-failed"
            case missingEntrySymbol = "missing-entry-symbol"
            case initFailed = "init-failed"
            case abiVersion = "abi-version"
            case structTooSmall = "struct-too-small"
            case invalidDescriptor = "invalid-descriptor"
            case invalidPluginName = "invalid-plugin-name"
            case invalidStepName = "invalid-step-name"
            case invalidWeight = "invalid-weight"
            case reservedStepName = "reserved-step-name"
            case duplicatePluginName = "duplicate-plugin-name"
            case duplicateStepName = "duplicate-step-name"
            case fileChanged = "file-changed"
            case tooLarge = "too-large"
            case loadCrashed = "load-crashed"
            case loadExited = "load-exited"
            case loadHung = "load-hung"
            case scanFailed = "scan-failed"
            case quarantined
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The code with this identifier (as ``description`` prints it), if there is one.
        public init?(identifier: String) {
            guard let base = Base(rawValue: identifier) else { return nil }
            self.base = base
        }

        /// The file is not a regular file (a directory, a device, a dangling symlink).
        public static let notRegularFile = Code(.notRegularFile)
        /// The file is writable by group or others, or owned by someone other than root or the host's user.
        public static let untrustedFile = Code(.untrustedFile)
        /// The file is a symlink that points outside the plugin directory.
        public static let symlinkEscape = Code(.symlinkEscape)
        /// The file cannot be opened.
        public static let unreadable = Code(.unreadable)
        /// `dlopen` refused the file (not a shared object, wrong architecture, missing library).
        public static let loadFailed = Code(.loadFailed)
        /// The file does not export `stephost_plugin_init`.
        public static let missingEntrySymbol = Code(.missingEntrySymbol)
        /// `stephost_plugin_init` returned an error.
        public static let initFailed = Code(.initFailed)
        /// The plugin chose an ABI version the host does not support.
        public static let abiVersion = Code(.abiVersion)
        /// A struct the plugin filled is smaller than the ABI version requires.
        public static let structTooSmall = Code(.structTooSmall)
        /// The descriptor holds a null pointer, a missing run function or text that is not UTF-8.
        public static let invalidDescriptor = Code(.invalidDescriptor)
        /// The plugin's name is missing or not of the form `[A-Za-z0-9_.-]{1,64}`.
        public static let invalidPluginName = Code(.invalidPluginName)
        /// A step's name is missing, not of the form `[A-Za-z0-9_.-]{1,64}`, or repeated in the plugin.
        public static let invalidStepName = Code(.invalidStepName)
        /// A step's weight is below 1 or exactly 100 (the weight of `create_runtime`).
        public static let invalidWeight = Code(.invalidWeight)
        /// A step is named `create_runtime`, which is built into the host.
        public static let reservedStepName = Code(.reservedStepName)
        /// Another plugin has the same name.
        public static let duplicatePluginName = Code(.duplicatePluginName)
        /// Another plugin has a step of the same name.
        public static let duplicateStepName = Code(.duplicateStepName)
        /// The file was replaced while it was being loaded.
        public static let fileChanged = Code(.fileChanged)
        /// The file is larger than a plugin may be; it was not read.
        public static let tooLarge = Code(.tooLarge)

        /// Loading it crashed the scanner child (a signal in a constructor or in `stephost_plugin_init`).
        public static let loadCrashed = Code(.loadCrashed)
        /// The scanner child exited while loading it (a constructor or `stephost_plugin_init` called `exit`).
        public static let loadExited = Code(.loadExited)
        /// Loading it did not finish within the init timeout (a constructor or `stephost_plugin_init` hangs).
        public static let loadHung = Code(.loadHung)
        /// The scanner child could not be run at all, so the plugin was not loaded.
        public static let scanFailed = Code(.scanFailed)
        /// One of its in-process steps killed the host, and the configuration refuses quarantined plugins.
        public static let quarantined = Code(.quarantined)

        /// The stable identifier shown in output, for example `abi-version`.
        public var description: String { base.rawValue }
    }

    /// The check that failed.
    public var code: Code
    /// What was wrong, with the values found.
    public var message: String
    /// What to do about it.
    public var fix: String

    public init(_ code: Code, _ message: String, fix: String) {
        self.code = code
        self.message = message
        self.fix = fix
    }

    public var description: String { "[\(code)] \(message). Fix: \(fix)" }
}

/// Why the plugin directory itself cannot be used; no plugin is loaded from it.
public struct PluginDirectoryError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The directory as given.
    public var directory: String
    /// What was wrong.
    public var message: String
    /// What to do about it.
    public var fix: String

    public init(directory: String, message: String, fix: String) {
        self.directory = directory
        self.message = message
        self.fix = fix
    }

    public var description: String { "plugin directory \(directory): \(message). Fix: \(fix)" }
}
