import Foundation
public import StepHostCore
public import StepHostLoader

/// Renders the pipeline, the broken plugins and the disabled ones as a table for people or as JSON for
/// programs.
public struct ListPluginsReport: Sendable {
    public let selection: PluginSelection
    /// Quarantined plugin builds from the database, when there is one to read.
    public var quarantined: [QuarantineRecord] = []
    /// Why the quarantined builds could not be read, if they could not.
    public var quarantineNote: String?
    var catalog: PluginCatalog { selection.catalog }

    public init(selection: PluginSelection, quarantined: [QuarantineRecord] = [], quarantineNote: String? = nil) {
        self.selection = selection
        self.quarantined = quarantined
        self.quarantineNote = quarantineNote
    }

    /// The quarantine record of a loaded plugin's build, if it has one.
    public func quarantine(of plugin: LoadedPlugin) -> QuarantineRecord? {
        quarantined.first { $0.plugin == plugin.name && $0.fileHash == plugin.fileHash }
    }

    /// Where a plugin's steps run now: its isolation, or `process` once it is quarantined (with the quarantine
    /// action `process`).
    public func isolation(of plugin: LoadedPlugin) -> String {
        guard quarantine(of: plugin) != nil, plugin.isolation == .inProcess else { return "\(plugin.isolation)" }
        return selection.isolation.quarantine == .process ? "process (quarantined)" : "refused (quarantined)"
    }

    /// The JSON document: `steps` in order, `plugins` (used), `broken`, `disabled`.
    public struct Document: Encodable, Sendable {
        public struct Step: Encodable, Sendable {
            public var position: Int
            public var name: String
            public var weight: Int
            public var plugin: String?
            public var plugin_version: String?
            public var file: String?
            public var builtin: Bool
        }
        public struct Plugin: Encodable, Sendable {
            public var name: String
            public var version: String
            public var file: String
            public var file_sha256: String
            public var abi_version: String
            public var steps: [String]
            public var isolation: String
            public var deadline_seconds: Double
            public var quarantine: Quarantine?
        }
        public struct Quarantine: Encodable, Sendable {
            public var reason: String
            public var since: String
        }
        public struct Broken: Encodable, Sendable {
            public var file: String
            public var plugin: String?
            public var check: String
            public var error: String
            public var fix: String
        }
        public struct Disabled: Encodable, Sendable {
            public var file: String
            public var plugin: String?
            /// False for a file disabled by its file name: it was never opened.
            public var opened: Bool
        }
        public var plugins_dir: String
        public var steps: [Step]
        public var plugins: [Plugin]
        public var broken: [Broken]
        public var disabled: [Disabled]
        public var quarantine_note: String?
    }

    /// Disabled plugins: the files never opened, those loaded and then left out, and broken ones disabled.
    public var disabled: [Document.Disabled] {
        let skipped = catalog.skipped.map { Document.Disabled(file: $0, plugin: nil, opened: false) }
        let loaded = selection.disabled.map { Document.Disabled(file: $0.file, plugin: $0.name, opened: true) }
        let broken = catalog.broken.filter { report in !selection.broken.contains { $0.file == report.file } }
            .map { Document.Disabled(file: $0.file, plugin: $0.name, opened: true) }
        return (skipped + loaded + broken).sorted { $0.file < $1.file }
    }

    public var document: Document {
        Document(
            plugins_dir: catalog.directory,
            steps: selection.order.enumerated().map { offset, step in
                Document.Step(
                    position: offset + 1,
                    name: step.name,
                    weight: step.weight,
                    plugin: step.plugin?.name,
                    plugin_version: step.plugin?.version,
                    file: step.plugin?.file,
                    builtin: step.plugin == nil
                )
            },
            plugins: selection.used.map {
                Document.Plugin(
                    name: $0.name,
                    version: $0.version,
                    file: $0.file,
                    file_sha256: $0.fileHash,
                    abi_version: $0.abiVersion.description,
                    steps: $0.steps.map(\.name),
                    isolation: isolation(of: $0),
                    deadline_seconds: selection.policy(of: $0).deadline.timeInterval,
                    quarantine: quarantine(of: $0).map {
                        Document.Quarantine(reason: $0.reason, since: ISO8601DateFormatter().string(from: $0.since))
                    }
                )
            },
            broken: selection.broken.map {
                Document.Broken(
                    file: $0.file,
                    plugin: $0.name,
                    check: $0.error.code.description,
                    error: $0.error.message,
                    fix: $0.error.fix
                )
            },
            disabled: disabled,
            quarantine_note: quarantineNote
        )
    }

    public func json() throws -> String {
        try Self.encode(document)
    }

    public static func directoryErrorJSON(_ error: PluginDirectoryError) throws -> String {
        struct DirectoryError: Encodable {
            var plugins_dir: String
            var error: String
            var fix: String
        }
        return try encode(DirectoryError(plugins_dir: error.directory, error: error.message, fix: error.fix))
    }

    private static func encode(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    public func table() -> String {
        let hashes = Dictionary(selection.used.map { ($0.file, $0.fileHash) }, uniquingKeysWith: { first, _ in first })
        var rows = [["#", "WEIGHT", "STEP", "PLUGIN", "VERSION", "SHA-256", "FILE"]]
        for (offset, step) in selection.order.enumerated() {
            rows.append([
                "\(offset + 1)",
                "\(step.weight)",
                step.name,
                step.plugin?.name ?? "(built-in)",
                step.plugin?.version ?? "-",
                // The first 12 digits; `--json` has the whole hash as file_sha256.
                step.plugin.flatMap { hashes[$0.file] }.map { String($0.prefix(12)) } ?? "-",
                step.plugin.map { ($0.file as NSString).lastPathComponent } ?? "-",
            ])
        }
        var lines = ["Pipeline (plugins from \(catalog.directory)):"]
        lines += TextTable.lines(rows).map { "  " + $0 }
        if !selection.used.isEmpty {
            lines.append("")
            lines.append("Plugins:")
            var plugins = [["PLUGIN", "ISOLATION", "DEADLINE", "ABI", "FILE"]]
            for plugin in selection.used {
                plugins.append([
                    plugin.name, isolation(of: plugin), selection.policy(of: plugin).deadline.humanText,
                    plugin.abiVersion.description, (plugin.file as NSString).lastPathComponent,
                ])
            }
            lines += TextTable.lines(plugins).map { "  " + $0 }
            for plugin in selection.used {
                guard let entry = quarantine(of: plugin) else { continue }
                lines.append(
                    "  \(plugin.name) is quarantined since \(ISO8601DateFormatter().string(from: entry.since)): \(entry.reason)"
                )
                lines.append("    clear: stephost plugins clear-quarantine \(plugin.name)")
            }
        }
        if let quarantineNote { lines.append("  (\(quarantineNote))") }
        if selection.broken.isEmpty {
            lines.append("All \(selection.used.count) plugins loaded.")
        } else {
            lines.append("")
            lines.append("Broken plugins (\(selection.broken.count)); none of their steps are used:")
            for broken in selection.broken {
                let name = broken.name.map { " (plugin '\($0)')" } ?? ""
                lines.append("  \(broken.file)\(name)")
                lines.append("    [\(broken.error.code)] \(broken.error.message)")
                lines.append("    fix: \(broken.error.fix)")
            }
        }
        let disabled = disabled
        if !disabled.isEmpty {
            lines.append("")
            lines.append("Disabled with --disable-plugin (\(disabled.count)); none of their steps are used:")
            for entry in disabled {
                let name = entry.plugin.map { " (plugin '\($0)')" } ?? ""
                lines.append("  \(entry.file)\(name)\(entry.opened ? "" : ": not opened")")
            }
        }
        // Versions, file names and init messages come from plugins: one table row stays one line.
        return lines.map(\.escapingControlCharacters).joined(separator: "\n")
    }
}
